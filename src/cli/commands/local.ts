// `mozharness-archive local …`: the embedded Taskcluster services for developers, tests and
// `npm start`. `local up` starts queue/index/hooks/auth on one loopback port plus an s3rver, prints
// how to reach them (or one JSON line with --json), and runs until SIGINT/SIGTERM.
import type { Command } from 'commander';
import type { Embedded } from '../../local/embedded.js';
import { ArchiveError } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { printLines } from '../output.js';
import { registerLocalTriggerAction } from './actions.js';
import { registerLocalRun } from './local-run.js';

export const DEFAULT_STATE_DIR = '.mozharness-archive';

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
}

export async function localUp(opts: LocalUpOptions): Promise<void> {
  const log = createLogger({ fields: { component: 'local-up' } });
  const { startEmbedded } = await import('../../local/embedded.js');
  const embedded = await startEmbedded({
    stateDir: opts.stateDir ?? DEFAULT_STATE_DIR,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    log,
  });
  const stopped = untilSignal();
  if (opts.json) process.stdout.write(JSON.stringify(connectionInfo(embedded)) + '\n');
  else printLines(humanLines(embedded));
  const sig = await stopped;
  log.info('embedded-services-stopping', { signal: sig });
  await embedded.close();
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
      'Start the embedded Taskcluster services (queue, index, hooks, auth, worker-manager) and an s3rver on\n' +
        'loopback, print how to reach them, and run until SIGINT/SIGTERM',
    )
    .option('--state-dir <dir>', 'where the database and S3 objects live', DEFAULT_STATE_DIR)
    .option('--port <n>', 'HTTP port (default: the previous choice, else a free port)', parsePort)
    .option('--json', 'print one JSON line: rootUrl, credentials, s3, archiveTaskQueueId')
    .action(async (o: { stateDir: string; port?: number; json?: boolean }) => {
      await localUp({ stateDir: o.stateDir, port: o.port, json: o.json });
    });
  registerLocalTriggerAction(local);
}
