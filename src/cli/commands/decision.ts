// Commands of the decision stage: render-tcyml, decision, graph. Thin: parse flags, call
// src/decision, print.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { Clients } from '../../taskcluster/client.js';
import { ArchiveError, errorMessage } from '../../util/errors.js';
import { createLogger, redact } from '../../util/log.js';
import type { DecisionResult } from '../../decision/decision.js';
import type { Parameters, PushFlags } from '../../decision/parameters.js';
import { TASKS_FOR, type TasksFor } from '../../decision/producers.js';
import { printJson, printLines, printResult } from '../output.js';

// The decision stage's modules load only when one of its commands runs (fast --help).
const load = {
  parameters: () => import('../../decision/parameters.js'),
  decision: () => import('../../decision/decision.js'),
  tc: () => import('../../taskcluster/client.js'),
};

function addPushOptions(cmd: Command): Command {
  return cmd
    .option('--project <name>', 'project (repository alias), e.g. mozilla-central')
    .option('--level <1|2|3>', 'SCM trust level of the repository')
    .option('--repository <url>', 'repository URL')
    .option('--repository-type <hg|git>', 'repository type (default: from the URL)')
    .option('--revision <40-hex>', 'pushed revision')
    .option('--base-revision <40-hex>', 'revision before the push')
    .option('--owner <email>', 'who pushed')
    .option('--pushlog-id <id>', 'hg pushlog id (0 when there is none)')
    .option('--pushdate <seconds|iso>', 'push time, unix seconds or ISO 8601')
    .option('--tasks-for <producer>', `producer: ${TASKS_FOR.join(', ')}`)
    .option('--task-id <slugid>', 'the decision task id')
    .option(
      '--root-url <url>',
      'Taskcluster root URL; without it nothing is looked up or submitted',
    );
}

async function defaultRootUrl(root: string): Promise<string | undefined> {
  const { loadGraphConfig } = await import('../../decision/config.js');
  try {
    return (await loadGraphConfig(root)).rootUrl;
  } catch {
    return undefined;
  }
}

async function clientsFor(rootUrl: string | undefined): Promise<Clients | undefined> {
  if (!rootUrl) return undefined;
  const { makeClients, optionsFromEnv } = await load.tc();
  const env = optionsFromEnv();
  const o = env && process.env.TASKCLUSTER_PROXY_URL ? env : { ...(env ?? {}), rootUrl };
  redact(o.credentials?.accessToken);
  return makeClients(o);
}

function parseDate(flag: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new ArchiveError('usage', `${flag}: not a date: ${v}`);
  return d;
}

function parseJsonFlag(flag: string, v: string | undefined): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v);
  } catch (e) {
    throw new ArchiveError('usage', `${flag}: not JSON: ${errorMessage(e)}`);
  }
}

/** `mozharness-archive render-tcyml`. */
function renderTcymlCommand(program: Command): void {
  addPushOptions(
    program
      .command('render-tcyml')
      .description(
        'Render .taskcluster.yml as a producer would (hg-push hook, build-decision git-push, taskcluster-github push or pull request, cron, action hook) and print the task',
      ),
  )
    .option('--tcyml <file>', '.taskcluster.yml to render', '.taskcluster.yml')
    .option(
      '--root <dir>',
      'in-tree taskcluster/ directory (for the default root URL)',
      'taskcluster',
    )
    .option('--now <iso>', "json-e's now, for reproducible output")
    .option('--github-ref <ref>', 'git-push, github-push: the pushed ref', 'refs/heads/main')
    .option('--action-name <name>', 'action: action name', 'retrigger-multiple')
    .option('--action-title <title>', 'action: title', 'Retrigger')
    .option('--action-symbol <symbol>', 'action: Treeherder symbol', 'rt')
    .option('--action-callback <name>', 'action: callback name', 'retrigger_multiple_action')
    .option('--action-perm <perm>', 'action: permission', 'generic')
    .option('--action-input <json>', 'action: input (JSON)')
    .option('--action-task <taskId>', 'action: the target task (absent for task-group actions)')
    .option(
      '--action-task-group <taskGroupId>',
      'action: the decision task group (default: --task-id)',
    )
    .option('--json', 'print {tasks: [...]} as one JSON document')
    .action(async (opts) => {
      const [{ mergeFlagsWithEnv, parametersFromFlags }, { renderDecisionTask }, yaml, { slugid }] =
        await Promise.all([
          load.parameters(),
          import('../../decision/tcyml.js'),
          import('js-yaml'),
          load.tc(),
        ]);
      const flags = mergeFlagsWithEnv(opts as PushFlags);
      const tasksFor = (flags.tasksFor ?? 'hg-push') as TasksFor;
      if (!TASKS_FOR.includes(tasksFor)) {
        throw new ArchiveError('usage', `--tasks-for: must be one of ${TASKS_FOR.join(', ')}`);
      }
      const params = parametersFromFlags(
        { ...flags, tasksFor },
        { rootUrl: await defaultRootUrl(opts.root), taskId: slugid() },
      );
      let text: string;
      try {
        text = await fs.readFile(opts.tcyml, 'utf8');
      } catch (e) {
        throw new ArchiveError('not-found', `cannot read ${opts.tcyml}: ${errorMessage(e)}`);
      }
      const task = renderDecisionTask(text, tasksFor, params, {
        now: parseDate('--now', opts.now)?.toISOString(),
        githubRef: opts.githubRef,
        action: {
          name: opts.actionName,
          title: opts.actionTitle,
          description: `${opts.actionTitle} (rendered by mozharness-archive render-tcyml)`,
          taskGroupId: opts.actionTaskGroup ?? params.decision_task_id,
          symbol: opts.actionSymbol,
          cb_name: opts.actionCallback,
          action_perm: opts.actionPerm,
          taskId: opts.actionTask ?? null,
          input: parseJsonFlag('--action-input', opts.actionInput) ?? {},
        },
      });
      printResult(opts.json, { tasks: [task] }, () => [
        yaml.dump([task], { lineWidth: -1, noRefs: true }).trimEnd(),
      ]);
    });
}

/** The decision task's summary: one JSON document, or the lines a release engineer reads. */
function printDecision(
  params: Parameters,
  r: DecisionResult,
  o: { json?: boolean; dryRun: boolean; out: string },
): void {
  const archive = r.optimized.records.find((x) => x.kind === 'mozharness-archive');
  const summary = {
    decisionTaskId: params.decision_task_id,
    dryRun: o.dryRun,
    treeDigest: r.digest?.treeDigest,
    sha256: r.digest?.sha256,
    archive: archive && {
      decision: archive.decision,
      result: archive.result,
      reason: archive.reason,
      taskId: r.labelToTaskId['mozharness-archive'],
    },
    tasks: r.resolved.order.length,
    submitted: r.submitted,
    indexed: r.indexed,
    artifacts: r.artifacts,
  };
  printResult(o.json, summary, () => [
    `decision task ${params.decision_task_id} (${params.project}, level ${params.level}, ${params.head_rev})`,
    `tree digest ${summary.treeDigest}, archive sha256 ${summary.sha256}`,
    `archive: ${archive?.decision} (${archive?.result}): ${archive?.reason}`,
    `${summary.tasks} task(s) ${o.dryRun ? 'generated (dry run, nothing submitted)' : `submitted: ${r.submitted?.created.length ?? 0} created, ${r.submitted?.existing.length ?? 0} already existed`}`,
    ...(r.indexed.length ? [`indexed the reused archive at ${r.indexed.join(', ')}`] : []),
    `artifacts in ${o.out}`,
  ]);
}

/** `mozharness-archive decision`. */
function decisionCommand(program: Command): void {
  addPushOptions(
    program
      .command('decision')
      .description(
        "Run the decision task: generate the push's graph (archive + downstream tasks), reuse an indexed archive of the same tree, submit, write artifacts",
      ),
  )
    .option('--dry-run', 'write the artifacts, submit nothing')
    .option('--out <dir>', 'artifacts directory (default $MOZHARNESS_ARCHIVE_OUT or artifacts/)')
    .option(
      '--checkout <path>',
      'checkout of the pushed revision (default $MOZHARNESS_ARCHIVE_CHECKOUT or .)',
    )
    .option('--root <dir>', 'in-tree taskcluster/ directory (default <checkout>/taskcluster)')
    .option('--created <iso>', "anchor timestamps here instead of the decision task's created")
    .option('--concurrency <n>', 'createTask requests in flight', '50')
    .option('--json', 'print the summary as one JSON document')
    .action(async (opts) => {
      const [{ mergeFlagsWithEnv, parametersFromFlags }, { runDecision }] = await Promise.all([
        load.parameters(),
        load.decision(),
      ]);
      const flags = mergeFlagsWithEnv(opts as PushFlags);
      const checkout: string = opts.checkout ?? process.env.MOZHARNESS_ARCHIVE_CHECKOUT ?? '.';
      const root: string = opts.root ?? `${checkout}/taskcluster`;
      const out: string = opts.out ?? process.env.MOZHARNESS_ARCHIVE_OUT ?? 'artifacts';
      const params = parametersFromFlags(
        { ...flags, taskId: flags.taskId ?? process.env.TASK_ID },
        { rootUrl: await defaultRootUrl(root) },
      );
      const clients = await clientsFor(flags.rootUrl);
      if (!clients && !opts.dryRun) {
        throw new ArchiveError(
          'usage',
          'submitting needs --root-url; use --dry-run to only write the artifacts',
        );
      }
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new ArchiveError('usage', '--concurrency: must be a positive integer');
      }
      const log = createLogger({ fields: { command: 'decision' } });
      const r = await runDecision({
        params,
        root,
        checkout,
        out,
        created: parseDate('--created', opts.created),
        queue: clients?.queue,
        index: clients?.index,
        dryRun: Boolean(opts.dryRun),
        concurrency,
        log,
      });
      printDecision(params, r, { json: opts.json, dryRun: Boolean(opts.dryRun), out });
    });
}

/** `mozharness-archive graph`. */
function graphCommand(program: Command): void {
  program
    .command('graph')
    .description(
      'Show one phase of the graph for a parameters file: full, target or optimized (resolved)',
    )
    .argument('<phase>', 'full | target | optimized')
    .requiredOption(
      '--params <file>',
      "parameters.yml: a decision task's, or any taskgraph parameters.yml (old-style files are read with a migration warning)",
    )
    .option('--root <dir>', 'in-tree taskcluster/ directory', 'taskcluster')
    .option('--checkout <path>', 'checkout, for the optimized phase (tree digest)')
    .option('--created <iso>', 'timestamp anchor for the optimized phase (default: push date)')
    .option('--root-url <url>', 'look the archive up in this deployment (optimized phase)')
    .option('--json', 'print the graph as one JSON document')
    .action(async (phase: string, opts) => {
      const [
        { loadParametersFile },
        { loadGraphs, runDecision },
        { graphToJson },
        { resolvedToJson },
        { deterministicSlugid },
      ] = await Promise.all([
        load.parameters(),
        load.decision(),
        import('../../decision/graph.js'),
        import('../../decision/resolve.js'),
        import('../../decision/taskids.js'),
      ]);
      if (!['full', 'target', 'optimized'].includes(phase)) {
        throw new ArchiveError(
          'usage',
          `graph: phase must be full, target or optimized, got '${phase}'`,
        );
      }
      // a taskgraph parameters.yml has no decision task id or root URL of ours: fill them
      const params: Parameters = await loadParametersFile(opts.params, {
        taskId: deterministicSlugid(`graph --params\n${path.resolve(opts.params)}`),
        rootUrl: opts.rootUrl ?? (await defaultRootUrl(opts.root)) ?? '',
      });
      if (phase !== 'optimized') {
        const { full, target } = await loadGraphs({ params, root: opts.root });
        const g = phase === 'full' ? full : target;
        if (opts.json) printJson(graphToJson(g));
        else printLines(g.order.map((l) => `${l} (${g.tasks[l]!.kind})`));
        return;
      }
      if (!opts.checkout)
        throw new ArchiveError('usage', 'graph optimized: needs --checkout (for the tree digest)');
      const clients = await clientsFor(opts.rootUrl);
      const r = await runDecision({
        params,
        root: opts.root,
        checkout: opts.checkout,
        created: parseDate('--created', opts.created),
        queue: clients?.queue,
        index: clients?.index,
        dryRun: true,
      });
      if (opts.json) {
        printJson({ optimizations: r.optimized.records, taskGraph: resolvedToJson(r.resolved) });
      } else {
        printLines([
          ...r.optimized.records
            .filter((x) => x.result !== 'not-optimizable')
            .map((x) => `${x.label}: ${x.decision} (${x.result}): ${x.reason}`),
          ...r.resolved.order.map((id) => `${id} ${r.resolved.tasks[id]!.label}`),
        ]);
      }
    });
}

export function register(program: Command): void {
  renderTcymlCommand(program);
  decisionCommand(program);
  graphCommand(program);
}
