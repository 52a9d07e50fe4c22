// `mozharness-archive local run` (what `npm start` runs): replay pushes on this machine against the
// embedded services, then print a summary people can read at a glance, or one JSON document.
import { Option, type Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReplaySummary } from '../../local/replay.js';
import { createLogger } from '../../util/log.js';
import { printJson } from '../output.js';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const short = (s: string, n = 12) => (s ? s.slice(0, n) : '-');
const secs = (ms?: number) => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)} s`);

/** The human summary: one block per push, then the retrigger. */
export function formatSummary(s: ReplaySummary): string[] {
  const lines: string[] = [];
  lines.push(
    `Replayed ${s.pushes.length} push${s.pushes.length === 1 ? '' : 'es'} of ${s.repository} (${s.vcs})`,
    `against the embedded services at ${s.rootUrl} (state: ${s.stateDir})`,
    '',
  );
  for (const [i, p] of s.pushes.entries()) {
    lines.push(
      `push ${i + 1}  ${short(p.revision)}  pushlog id ${p.pushlogId}${p.description ? `  (${p.description})` : ''}`,
      `  producer    ${p.producer}: project ${p.project}, level ${p.level}, decision task ${p.decisionTaskId}`,
    );
    const a = p.archive;
    lines.push(
      `  archive     ${a.reused ? 'REUSED' : 'BUILT '}  task ${a.taskId || '-'}`,
      `              why: ${a.reason || '-'}`,
      `              tree digest ${short(a.treeDigest, 16)}…  sha256 ${short(a.sha256, 16)}…`,
      `              url ${a.url || '-'}`,
    );
    if (a.namespaces.length) {
      lines.push(`              indexed as:`);
      for (const n of a.namespaces) lines.push(`                ${n}`);
    }
    lines.push(`  repository requests: ${p.repoRequests}`);
    lines.push(`  tasks (decision task ${p.decisionTaskId}):`);
    const width = Math.max(...p.tasks.map((t) => t.label.length), 8);
    for (const t of p.tasks) {
      lines.push(`    ${t.state.padEnd(10)} ${t.label.padEnd(width)}  ${t.taskId}  ${secs(t.ms)}`);
    }
    lines.push('');
  }
  if (s.retrigger) {
    const r = s.retrigger;
    lines.push(
      `retrigger  ${r.action} of ${r.labels.join(', ')} on decision task ${r.decisionTaskId}`,
      `  through Treeherder's path: public/actions.json → hook → action task ${r.actionTaskId}`,
    );
    for (const t of r.tasks)
      lines.push(`    ${t.state.padEnd(10)} ${t.label}  ${t.taskId}  ${secs(t.ms)}`);
    lines.push('');
  }
  const all = [...s.pushes.flatMap((p) => p.tasks), ...(s.retrigger?.tasks ?? [])];
  const bad = all.filter((t) => t.state !== 'completed');
  lines.push(
    bad.length
      ? `${bad.length} of ${all.length} tasks did not complete.`
      : `All ${all.length} tasks completed.`,
  );
  for (const t of bad) {
    lines.push('', `--- ${t.label} (${t.taskId}): ${t.state}; last lines of its log:`);
    for (const l of t.logTail ?? []) lines.push(`  ${l}`);
  }
  lines.push('', ...dashboardHint(s.stateDir));
  return lines;
}

/** How to look at a finished run in the dashboard. */
export function dashboardHint(stateDir: string): string[] {
  const rel = path.relative(process.cwd(), stateDir) || '.';
  const dir = rel.startsWith('..') ? stateDir : rel;
  const flag = dir === '.mozharness-archive' ? '' : ` --state-dir ${dir}`;
  return [
    'See this run in the dashboard (pushes, tasks, logs, archives, Retrigger):',
    `  npx mozharness-archive local up${flag}`,
    '  then open the dashboard URL it prints (http://127.0.0.1:<port>/).',
  ];
}

/** The --json document (issue contract), plus a few extra fields. */
export function summaryJson(s: ReplaySummary): unknown {
  return {
    rootUrl: s.rootUrl,
    repository: s.repository,
    ok: s.ok,
    pushes: s.pushes.map((p) => ({
      revision: p.revision,
      pushlogId: p.pushlogId,
      producer: p.producer,
      project: p.project,
      level: p.level,
      decisionTaskId: p.decisionTaskId,
      archive: p.archive,
      repoRequests: p.repoRequests,
      tasks: p.tasks.map((t) => ({ label: t.label, taskId: t.taskId, state: t.state, ms: t.ms })),
    })),
    ...(s.retrigger
      ? {
          retrigger: {
            ...s.retrigger,
            tasks: s.retrigger.tasks.map((t) => ({
              label: t.label,
              taskId: t.taskId,
              state: t.state,
            })),
          },
        }
      : {}),
  };
}

/** The flags of `local run`, as commander parses them. */
interface LocalRunFlags {
  stateDir: string;
  repo?: string;
  repoType: 'git' | 'hg';
  revisions?: string;
  project: string;
  /** as given: commander does not check it */
  level: '1' | '2' | '3';
  retrigger: boolean;
  keepServing?: boolean;
  json?: boolean;
}

export function registerLocalRun(local: Command): void {
  local
    .command('run')
    .description(
      'Replay pushes end to end on this machine (what `npm start` runs): embedded Taskcluster\n' +
        'services, s3rver and the repository (git smart HTTP, or `hg serve` with --repo-type hg)\n' +
        'on loopback; decision task, archive worker, downstream\n' +
        'build and test tasks that fetch and verify the archive, then a Treeherder-style retrigger.\n' +
        'With no arguments it replays a sample repository: a push that creates the harness, one\n' +
        'that changes only other directories (the archive is reused: no archive task, no request\n' +
        'to the repository server) and one that changes the harness.',
    )
    .option(
      '--state-dir <dir>',
      'state of the embedded services (kept between runs)',
      '.mozharness-archive',
    )
    .option('--repo <path>', 'a local hg or git repository to replay instead of the sample one')
    .addOption(
      new Option('--repo-type <vcs>', 'the sample repository: git (smart HTTP) or hg (hg serve)')
        .choices(['git', 'hg'])
        .default('git'),
    )
    .option('--revisions <a,b,c>', 'revisions to replay, in order (default: the last three)')
    .option('--project <name>', 'project (repository) name', 'mozilla-central')
    .option('--level <n>', 'trust level of the pushes (1 = try, 3 = release branches)', '3')
    .option('--no-retrigger', 'skip the retrigger')
    .option(
      '--keep-serving',
      'after the replay, keep the services, the worker pools and the dashboard running on its\n' +
        'state directory (as `local up` does) until Ctrl-C',
    )
    .option(
      '--json',
      'print one JSON document instead of the summary (with --keep-serving, then one line of\n' +
        '`local up --json`)',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  npm start\n  mozharness-archive local run --json\n' +
        '  mozharness-archive local run --repo-type hg\n' +
        '  mozharness-archive local run --repo ~/src/mozilla-unified --revisions 1a2b3c4d5e6f,central\n',
    )
    .action(runLocalRun);
}

/** Replay the pushes, print the summary; with --keep-serving, then serve as `local up` does. */
async function runLocalRun(opts: LocalRunFlags): Promise<void> {
  let keepServing = false;
  const tty = !opts.json && process.stderr.isTTY;
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write('\ninterrupted: shutting down the embedded services…\n');
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const { replay } = await import('../../local/replay.js');
    const summary = await replay({
      stateDir: opts.stateDir,
      projectRoot: PROJECT_ROOT,
      ...(opts.repo ? { repo: opts.repo } : { vcs: opts.repoType }),
      ...(opts.revisions ? { revisions: String(opts.revisions).split(',').filter(Boolean) } : {}),
      project: opts.project,
      level: opts.level,
      retrigger: opts.retrigger,
      log: createLogger({
        json: !tty,
        level: process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL ? undefined : 'warn',
      }),
      ...(tty ? { onProgress: (l: string) => process.stderr.write(l + '\n') } : {}),
      signal: controller.signal,
    });
    if (opts.json) printJson(summaryJson(summary));
    else process.stdout.write(formatSummary(summary).join('\n') + '\n');
    process.exitCode = summary.ok ? 0 : 1;
    keepServing = Boolean(opts.keepServing) && !controller.signal.aborted;
  } catch (e) {
    if (!controller.signal.aborted) throw e;
    // the services, hg serve and the task runners were stopped by replay's clean-up
    process.stderr.write('mozharness-archive: interrupted; everything was shut down\n');
    process.exitCode = 130;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (keepServing) {
    // the replay stopped its services; `local up` starts them again on the same state, with
    // the worker pools and the dashboard, and stops everything on Ctrl-C
    const { localUp } = await import('./local.js');
    await localUp({ stateDir: opts.stateDir, json: Boolean(opts.json) });
  }
}
