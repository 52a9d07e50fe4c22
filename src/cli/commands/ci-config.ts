// `mozharness-archive ci-config`: what a Taskcluster deployment must hold for this trust domain
// (projects and levels, roles and grants, action hooks, worker pools), printed in Mozilla's
// ci-configuration file formats; `--apply` creates the same through the APIs. Thin: read the
// in-tree files, call src/actions/ci-config.ts, print.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { CiProject, WorkerManagerClient } from '../../actions/ci-config.js';
import { ArchiveError } from '../../util/errors.js';
import { redact } from '../../util/log.js';
import { printResult } from '../output.js';

// The stage's modules load only when the command runs (fast --help).
const load = {
  core: () => import('../../actions/ci-config.js'),
  files: () => import('../../actions/ci-config-files.js'),
  config: () => import('../../decision/config.js'),
  client: () => import('../../taskcluster/client.js'),
  tc: async () => (await import('taskcluster-client')).default,
};

interface Flags {
  checkout: string;
  project: string[];
  onlyGiven?: boolean;
  apply?: boolean;
  noWorkerPools?: boolean;
  rootUrl?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('ci-config')
    .description(
      'print what a Taskcluster deployment holds for this trust domain, in ci-configuration ' +
        '(fxci-config) formats: projects.yml, actions.yml, grants.yml (and the roles by id), the ' +
        'in-tree action hooks and worker-pools.yml; --apply creates the roles, hooks and pools',
    )
    .option('--checkout <dir>', 'checkout holding .taskcluster.yml and taskcluster/', '.')
    .option(
      '--project <name=url@level>',
      'an hg repository whose pushes the hg-push hook reports (repeatable), e.g. ' +
        'mozilla-central=https://hg.mozilla.org/mozilla-central@3; git repositories come from ' +
        '.taskcluster.yml',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--only-given', 'leave out the git repositories listed in .taskcluster.yml')
    .option(
      '--apply',
      'create or update the roles, hooks and worker pools (needs TASKCLUSTER_* credentials with ' +
        'auth:create-role, hooks:modify-hook and worker-manager:manage-worker-pool scopes)',
    )
    .option('--no-worker-pools', 'with --apply: leave worker pools alone (no worker-manager)')
    .option('--root-url <url>', 'Taskcluster root URL for --apply (default TASKCLUSTER_ROOT_URL)')
    .option('--json', 'print one JSON document')
    .action(async (flags: Flags & { workerPools?: boolean }) => {
      const { applyCiConfig, ciConfig, parseProjectFlag } = await load.core();
      const { ciConfigFiles } = await load.files();
      const { loadGraphConfig } = await load.config();
      const tcymlFile = path.join(flags.checkout, '.taskcluster.yml');
      const tcyml = fs.readFileSync(tcymlFile, 'utf8');
      const config = await loadGraphConfig(path.join(flags.checkout, 'taskcluster'));
      const projects: CiProject[] = flags.project.map(parseProjectFlag);
      const c = ciConfig({ tcyml, config, projects, onlyGiven: flags.onlyGiven ?? false });
      if (!flags.apply) {
        const files = ciConfigFiles(c);
        printResult(flags.json, { trustDomain: c.trustDomain, levels: c.levels, files }, () =>
          Object.entries(files).flatMap(([name, text]) => [
            `# ---- ${name} (trust domain ${c.trustDomain}, levels ${c.levels.join(', ')})`,
            text.trimEnd(),
            '',
          ]),
        );
        return;
      }
      const { authClient, hooksClient, optionsFromEnv } = await load.client();
      const tc = await load.tc();
      const env = optionsFromEnv();
      const rootUrl = (flags.rootUrl ?? env?.rootUrl)?.replace(/\/+$/, '');
      if (!rootUrl) {
        throw new ArchiveError('usage', '--apply needs --root-url or TASKCLUSTER_ROOT_URL');
      }
      if (!env?.credentials) {
        throw new ArchiveError(
          'usage',
          '--apply needs TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN',
        );
      }
      redact(env.credentials.accessToken);
      const o = { rootUrl, credentials: env.credentials };
      const summary = await applyCiConfig(c, {
        auth: authClient(o),
        hooks: hooksClient(o),
        ...(flags.workerPools === false
          ? {}
          : { workerManager: new tc.WorkerManager(o) as WorkerManagerClient }),
      });
      printResult(flags.json, summary, () => [
        `applied to ${rootUrl}: ${summary.roles.length} roles, ${summary.hooks.length} hooks, ` +
          `${summary.workerPools.length} worker pools`,
        ...summary.roles.map((r) => `  role ${r}`),
        ...summary.hooks.map((h) => `  hook ${h}`),
        ...summary.workerPools.map((p) => `  worker pool ${p}`),
      ]);
    });
}
