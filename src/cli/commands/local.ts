// `mozharness-archive local …`: the forest on one machine for developers, tests and `npm start`.
// `local up` starts queue/index/hooks/auth on one loopback port plus an s3rver, the worker pools,
// the dashboard and (with --repo) the repository to push to, prints how to reach them (or one
// JSON line with --json), and runs until SIGINT/SIGTERM.
import { Option, type Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Embedded } from '../../local/embedded.js';
import type { Forest } from '../../local/forest.js';
import { ArchiveError } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { printCredentialHints, printLines } from '../output.js';
import { registerLocalTriggerAction } from './actions.js';
import { registerLocalRun } from './local-run.js';

export const DEFAULT_STATE_DIR = '.mozharness-archive';
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw new ArchiveError('usage', `--port must be an integer from 0 to 65535, not '${value}'`);
  }
  return n;
}

/** The document `local up --json` prints (one line). */
export function connectionInfo(e: Embedded): Record<string, unknown> {
  return {
    rootUrl: e.rootUrl,
    credentials: { clientId: e.credentials.clientId, accessToken: e.credentials.accessToken },
    s3: e.s3 ?? null,
    archiveTaskQueueId: e.archiveTaskQueueId,
  };
}

function humanLines(e: Embedded): string[] {
  const lines = [
    `Embedded Taskcluster services (queue, index, hooks, auth, worker-manager) at ${e.rootUrl}`,
    `State directory: ${e.stateDir}`,
    '',
    'Use them from a shell:',
    `  export TASKCLUSTER_ROOT_URL=${e.rootUrl}`,
    `  export TASKCLUSTER_CLIENT_ID=${e.credentials.clientId}`,
    `  export TASKCLUSTER_ACCESS_TOKEN=${e.credentials.accessToken}`,
  ];
  if (e.s3) {
    lines.push(
      `  export AWS_ENDPOINT_URL_S3=${e.s3.endpoint}`,
      `  export AWS_REGION=${e.s3.region}`,
      `  export AWS_ACCESS_KEY_ID=${e.s3.accessKeyId}`,
      `  export AWS_SECRET_ACCESS_KEY=${e.s3.secretAccessKey}`,
      `  export MOZHARNESS_ARCHIVE_BUCKET=${e.s3.bucket}`,
      `  export MOZHARNESS_ARCHIVE_PUBLIC_BASE_URL=${e.s3.publicBaseUrl}`,
    );
  }
  lines.push(
    '',
    `Archive task queue: ${e.archiveTaskQueueId}`,
    '',
    'Then, in that shell:',
    '  mozharness-archive find --project mozilla-central --latest',
    '  mozharness-archive fetch --project mozilla-central --revision <rev> --dest ./mozharness',
    `  mozharness-archive worker --task-queue-id ${e.archiveTaskQueueId} --worker-group local \\`,
    `      --worker-id w1${e.s3 ? ` --s3-bucket ${e.s3.bucket}` : ''} --allow-repo <repository URL>`,
    '  mozharness-archive serve --config examples/lookup.yml   # with rootUrl set to the URL above',
    "  node -e \"import('taskcluster-client').then(({default: tc}) =>",
    '      new tc.Queue(tc.fromEnvVars()).ping().then(console.log))"',
    '',
    'Stop with Ctrl-C.',
  );
  return lines;
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export interface LocalUpOptions {
  stateDir?: string;
  port?: number;
  json?: boolean;
  repo?: string;
  project?: string;
  level?: '1' | '2' | '3';
  workers?: boolean;
}

/** What `local up` adds to the services: the URL to push to, the worker pools, the dashboard. */
function forestLines(f: Forest): string[] {
  const lines: string[] = [];
  if (f.dashboardUrl) lines.push(`Dashboard: ${f.dashboardUrl}`, '');
  if (f.repository) {
    const r = f.repository;
    lines.push(
      `Serving ${r.path} (${r.vcs}) at ${r.url}; push to it:`,
      r.vcs === 'git' ? `  git push ${r.url} HEAD:main` : `  hg push ${r.url}`,
      'Each push runs its decision task and every task it creates.',
      '',
    );
  }
  if (f.pools) {
    lines.push(`Worker pools (local runners) on ${f.pools.taskQueueIds.length} task queues:`);
    for (const q of f.pools.taskQueueIds) lines.push(`  ${q}`);
    lines.push('');
  } else {
    lines.push('No workers (--no-workers): tasks stay pending until a worker claims them.', '');
  }
  return lines;
}

export async function localUp(opts: LocalUpOptions): Promise<void> {
  const log = createLogger({ fields: { component: 'local-up' } });
  const { startForest } = await import('../../local/forest.js');
  const forest = await startForest({
    stateDir: opts.stateDir ?? DEFAULT_STATE_DIR,
    projectRoot: PROJECT_ROOT,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.repo ? { repo: opts.repo } : {}),
    ...(opts.project ? { project: opts.project } : {}),
    ...(opts.level ? { level: opts.level } : {}),
    workers: opts.workers !== false,
    log,
    ...(opts.json ? {} : { onEvent: (l: string) => process.stderr.write(l + '\n') }),
  });
  const stopped = untilSignal();
  if (opts.json) {
    const info = {
      ...connectionInfo(forest.embedded),
      dashboardUrl: forest.dashboardUrl ?? null,
      repository: forest.repository ?? null,
      taskQueueIds: forest.pools?.taskQueueIds ?? [],
    };
    process.stdout.write(JSON.stringify(info) + '\n');
  } else {
    printLines(forestLines(forest));
    printCredentialHints(humanLines(forest.embedded));
  }
  const sig = await stopped;
  log.info('local-forest-stopping', { signal: sig });
  await forest.close();
}

export function register(program: Command): void {
  const local =
    program.commands.find((c) => c.name() === 'local') ??
    program
      .command('local')
      .description(
        'This system on one machine: embedded Taskcluster services, push replays, actions',
      );
  registerLocalRun(local);
  local
    .command('up')
    .description(
      'Run the forest on this machine until SIGINT/SIGTERM: the embedded Taskcluster services\n' +
        '(queue, index, hooks, auth, worker-manager) and an s3rver on loopback, the worker pools of\n' +
        'every task queue the in-tree config names (decision and actions, archive, docker-worker\n' +
        'and generic-worker stand-ins), the dashboard, and with --repo the repository served for\n' +
        'pushes: each push creates its decision task, and its tasks run',
    )
    .option('--state-dir <dir>', 'where the database and S3 objects live', DEFAULT_STATE_DIR)
    .option('--port <n>', 'HTTP port (default: the previous choice, else a free port)', parsePort)
    .option('--repo <path>', 'serve this hg or git repository, accept pushes and run their tasks')
    .option('--project <name>', 'project (repository) name of the pushes', 'mozilla-central')
    .addOption(
      new Option('--level <n>', 'trust level of the pushes').choices(['1', '2', '3']).default('3'),
    )
    .option('--no-workers', 'the services alone: run no worker pools')
    .option(
      '--json',
      'print one JSON line: rootUrl, credentials, s3, archiveTaskQueueId, dashboardUrl, repository',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  mozharness-archive local up --repo ~/src/gecko\n' +
        '  mozharness-archive local up          # the workers and dashboard on what npm start left\n' +
        '  mozharness-archive local up --no-workers --json\n',
    )
    .action(async (o: LocalUpOptions & { stateDir: string }) => {
      await localUp(o);
    });
  registerLocalTriggerAction(local);
}
