// In-tree actions: `action-callback` (the body of an action task) and `local trigger-action`
// (Treeherder's path, against any root URL — typically the embedded services of `local up`).
// Thin: parse flags and environment, build clients, call src/actions/, print.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ActionContext, CallbackResult } from '../../actions/callback.js';
import type { TriggerActionResult } from '../../actions/trigger.js';
import { optionsFromEnv, type ClientOptions, type Credentials } from '../../taskcluster/options.js';
import { ArchiveError, errorMessage } from '../../util/errors.js';
import { createLogger, redact } from '../../util/log.js';
import { printResult } from '../output.js';

interface CallbackFlags {
  callback?: string;
  taskGroupId?: string;
  taskId?: string;
  input?: string;
  ownTaskId?: string;
  out?: string;
  rootUrl?: string;
  checkout?: string;
  json?: boolean;
}

/** Inside a task the proxy (TASKCLUSTER_PROXY_URL) carries the task's scopes; otherwise the
 * root URL from --root-url / TASKCLUSTER_ROOT_URL and the TASKCLUSTER_* credentials. */
function callbackClientOptions(rootUrl: string | undefined): ClientOptions {
  const env = optionsFromEnv();
  if (process.env.TASKCLUSTER_PROXY_URL && env) return env;
  const url = (rootUrl || env?.rootUrl)?.replace(/\/+$/, '');
  if (!url) {
    throw new ArchiveError(
      'usage',
      'no Taskcluster root URL: pass --root-url or set TASKCLUSTER_ROOT_URL',
    );
  }
  const o: ClientOptions = { rootUrl: url };
  if (env?.credentials) {
    redact(env.credentials.accessToken);
    o.credentials = env.credentials;
  }
  return o;
}

async function actionContextFromFlags(
  flags: CallbackFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ActionContext> {
  const { actionContextFromEnv, parseJsonish } = await import('../../actions/callback.js');
  const fromEnv = actionContextFromEnv(env);
  const ctx: Partial<ActionContext> = { ...fromEnv };
  if (flags.callback) ctx.callback = flags.callback;
  if (flags.taskGroupId) ctx.taskGroupId = flags.taskGroupId;
  if (flags.taskId !== undefined)
    ctx.taskId = parseJsonish(flags.taskId, 'ACTION_TASK_ID') as string | null;
  if (flags.input !== undefined) ctx.input = parseJsonish(flags.input, 'ACTION_INPUT');
  if (flags.ownTaskId) ctx.ownTaskId = flags.ownTaskId;
  const missing = [
    !ctx.callback && '--callback (or ACTION_CALLBACK)',
    !ctx.taskGroupId && '--task-group-id (or ACTION_TASK_GROUP_ID)',
  ].filter(Boolean);
  if (missing.length)
    throw new ArchiveError('usage', `missing action context: ${missing.join(', ')}`);
  return {
    callback: ctx.callback!,
    taskGroupId: ctx.taskGroupId!,
    taskId: ctx.taskId ?? null,
    input: ctx.input ?? null,
    ...(ctx.ownTaskId ? { ownTaskId: ctx.ownTaskId } : {}),
  };
}

function callbackLines(r: CallbackResult): string[] {
  const lines = [`action ${r.callback} on push ${r.decisionTaskId}:`];
  for (const d of r.dependencies)
    lines.push(`  ${d.decision} ${d.label}${d.taskId ? ` → ${d.taskId}` : ''} (${d.reason})`);
  for (const c of r.created)
    lines.push(`  created ${c.taskId} ${c.label}${c.copy ? ` (copy ${c.copy})` : ''}`);
  for (const id of r.canceled) lines.push(`  canceled ${id}`);
  if (!r.created.length && !r.canceled.length) lines.push('  nothing to do');
  return lines;
}

interface TriggerFlags {
  decisionTask: string;
  action: string;
  task?: string;
  input?: string;
  rootUrl?: string;
  credentials?: string;
  noValidate?: boolean;
  validate?: boolean;
  json?: boolean;
}

/** Root URL and credentials: --credentials FILE (the `local up --json` document), else flags and
 * the TASKCLUSTER_* environment. */
export function triggerClientOptions(flags: { rootUrl?: string; credentials?: string }): {
  rootUrl: string;
  credentials?: Credentials;
} {
  if (flags.credentials) {
    let doc: {
      rootUrl?: string;
      credentials?: { clientId?: string; accessToken?: string };
    } | null;
    try {
      doc = JSON.parse(fs.readFileSync(flags.credentials, 'utf8').trim().split('\n')[0]!);
    } catch (e) {
      throw new ArchiveError(
        'usage',
        `--credentials ${flags.credentials}: not a \`local up --json\` document: ${errorMessage(e)}`,
      );
    }
    if (!doc?.rootUrl || !doc?.credentials?.clientId || !doc?.credentials?.accessToken) {
      throw new ArchiveError(
        'usage',
        `--credentials ${flags.credentials}: needs rootUrl and credentials {clientId, accessToken}`,
      );
    }
    redact(doc.credentials.accessToken);
    return {
      rootUrl: String(flags.rootUrl ?? doc.rootUrl).replace(/\/+$/, ''),
      credentials: { clientId: doc.credentials.clientId, accessToken: doc.credentials.accessToken },
    };
  }
  const env = optionsFromEnv();
  const rootUrl = (flags.rootUrl ?? env?.rootUrl)?.replace(/\/+$/, '');
  if (!rootUrl)
    throw new ArchiveError(
      'usage',
      'no Taskcluster root URL: pass --root-url, --credentials or set TASKCLUSTER_ROOT_URL',
    );
  if (env?.credentials) redact(env.credentials.accessToken);
  return { rootUrl, ...(env?.credentials ? { credentials: env.credentials } : {}) };
}

function triggerLines(r: TriggerActionResult): string[] {
  const where =
    r.action.kind === 'hook' ? ` via hook ${r.action.hookGroupId}/${r.action.hookId}` : '';
  return [
    `triggered '${r.action.name}' (${r.action.title})${where}`,
    `action task: ${r.actionTaskId}`,
  ];
}

/** `local trigger-action`: call from src/cli/commands/local.ts with the `local` command. */
export function registerLocalTriggerAction(local: Command): void {
  if (local.commands.some((c) => c.name() === 'trigger-action')) return;
  local
    .command('trigger-action')
    .description(
      "Trigger an in-tree action as Treeherder does: read the decision task's public/actions.json\n" +
        'anonymously, pick the action by name and context, render its hookPayload, triggerHook.',
    )
    .requiredOption('--decision-task <taskId>', "the push's decision task id")
    .requiredOption(
      '--action <name>',
      'action name (retrigger-multiple, add-new-jobs, retrigger, cancel, …)',
    )
    .option('--task <taskId>', 'the task the action applies to (per-task actions)')
    .option('--input <json>', 'action input as JSON')
    .option('--credentials <file>', 'a `local up --json` document (root URL and credentials)')
    .option('--root-url <url>', 'Taskcluster root URL (default: $TASKCLUSTER_ROOT_URL)')
    .option('--no-validate', "do not check the input against the action's schema first")
    .option('--json', 'print one JSON document')
    .action(async (flags: TriggerFlags) => {
      const [{ parseJsonish }, { triggerAction }] = await Promise.all([
        import('../../actions/callback.js'),
        import('../../actions/trigger.js'),
      ]);
      const { rootUrl, credentials } = triggerClientOptions(flags);
      const input = flags.input === undefined ? undefined : parseJsonish(flags.input, '--input');
      const res = await triggerAction({
        rootUrl,
        ...(credentials ? { credentials } : {}),
        decisionTaskId: flags.decisionTask,
        action: flags.action,
        ...(flags.task ? { taskId: flags.task } : {}),
        ...(input !== undefined ? { input } : {}),
        validateInput: flags.validate !== false,
        log: createLogger({ fields: { component: 'trigger-action' } }),
      });
      printResult(flags.json, res, () => triggerLines(res));
    });
}

export function register(program: Command): void {
  program
    .command('action-callback')
    .description(
      'Run an in-tree action inside its action task. The context comes from ACTION_CALLBACK, ' +
        'ACTION_TASK_GROUP_ID, ACTION_TASK_ID, ACTION_INPUT and TASK_ID (set by .taskcluster.yml), ' +
        'or the flags below. Validates everything before creating any task.',
    )
    .option('--callback <name>', 'callback (default: $ACTION_CALLBACK)')
    .option(
      '--task-group-id <taskId>',
      "the push's decision task id (default: $ACTION_TASK_GROUP_ID)",
    )
    .option('--task-id <json>', 'target task id, JSON or bare (default: $ACTION_TASK_ID)')
    .option('--input <json>', 'action input (default: $ACTION_INPUT)')
    .option('--own-task-id <taskId>', 'this action task (default: $TASK_ID)')
    .option(
      '--out <dir>',
      "where to write task-graph.json and label-to-taskid.json (the task's public/)",
      'artifacts',
    )
    .option(
      '--root-url <url>',
      'Taskcluster root URL (default: $TASKCLUSTER_ROOT_URL; the proxy when present)',
    )
    .option('--json', 'print one JSON document')
    .action(async (flags: CallbackFlags) => {
      const [{ runActionCallback }, { decisionTaskDefiner, retargetArchiveTask }, tc] =
        await Promise.all([
          import('../../actions/callback.js'),
          import('../../actions/define.js'),
          import('../../taskcluster/client.js'),
        ]);
      const { queueClient, indexClient } = tc;
      const ctx = await actionContextFromFlags(flags);
      const o = callbackClientOptions(flags.rootUrl);
      const log = createLogger({ fields: { component: 'action-callback', action: ctx.callback } });
      const res = await runActionCallback(ctx, {
        queue: queueClient(o),
        index: indexClient(o),
        log,
        ...(flags.out ? { outDir: flags.out } : {}),
        defineTask: decisionTaskDefiner({
          root: path.join(flags.checkout ?? '.', 'taskcluster'),
          log,
        }),
        retarget: retargetArchiveTask,
      });
      printResult(flags.json, res, () => callbackLines(res));
    });
  // `local trigger-action` is registered by src/cli/commands/local.ts (it owns `local`), which
  // calls registerLocalTriggerAction(local).
}
