// `mozharness-archive worker`: the Taskcluster worker for archive tasks. Thin: load and
// validate the configuration, build the S3 store, run the claim loop until SIGTERM/SIGINT (or one
// task with --once), print a summary.
import type { Command } from 'commander';
import { createLogger } from '../../util/log.js';
import type { WorkerFlags } from '../../worker/index.js';
import { printResult } from '../output.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'Claim archive tasks from a Taskcluster task queue: build the harness archive at the ' +
        "task's revision, test it, store it in S3 by sha256, publish artifacts, resolve the task. " +
        'Credentials: registered with worker-manager (workerManager in the --config file), or ' +
        'TASKCLUSTER_CLIENT_ID/TASKCLUSTER_ACCESS_TOKEN (or TASKCLUSTER_PROXY_URL); and the ' +
        'standard AWS variables. Flags win over the --config file.',
    )
    .option('--config <file>', 'YAML configuration file (schemas/worker-config.json)')
    .option('--root-url <url>', 'Taskcluster root URL (default TASKCLUSTER_ROOT_URL)')
    .option('--task-queue-id <id>', 'task queue to claim from, e.g. proj-mozharness/archive')
    .option('--worker-group <group>', 'worker group')
    .option('--worker-id <id>', 'worker id')
    .option('--capacity <n>', 'tasks run at the same time (default 1)')
    .option('--s3-endpoint <url>', 'S3 endpoint (default AWS_ENDPOINT_URL_S3 / AWS)')
    .option('--s3-region <region>', 'S3 region (default AWS_REGION)')
    .option('--s3-bucket <bucket>', 'bucket holding archives and task logs')
    .option('--s3-prefix <prefix>', 'key prefix inside the bucket')
    .option('--s3-public-base-url <url>', 'public URL under which keys are served')
    .option(
      '--allow-repo <url-prefix>',
      'repository URL prefix this worker may fetch (repeatable)',
      collect,
    )
    .option(
      '--shutdown-grace <seconds>',
      'on SIGTERM, time running tasks get to finish (default 60)',
    )
    .option('--work-dir <dir>', 'where task directories are created (default the system temp dir)')
    .option(
      '--task-user <name>',
      "unprivileged user the payload's test command runs as (default mozharness-test)",
    )
    .option(
      '--test-isolation <mode>',
      'required (default): refuse to start unless tests can run as the task user; ' +
        'best-effort: local development only',
    )
    .option('--metrics-port <port>', 'serve Prometheus metrics at /metrics on this port')
    .option('--once', 'exit after resolving one task')
    .option('--print-config', 'print the merged configuration (secrets redacted) and exit')
    .option('--json', 'print the summary as one JSON document')
    .action(runWorkerCommand);
}

/** Run the worker until it is told to stop (or, with --once, one task), then print the summary. */
async function runWorkerCommand(
  opts: WorkerFlags & { printConfig?: boolean; json?: boolean },
): Promise<void> {
  // the worker stage (AWS SDK, taskcluster-client) loads only when the command runs
  const [
    { ArchiveStore, createS3Client },
    { describeConfig, loadWorkerConfig, runWorker, S3TaskLogStore },
  ] = await Promise.all([import('../../storage/index.js'), import('../../worker/index.js')]);
  const config = loadWorkerConfig(opts);
  if (opts.printConfig) {
    printResult(true, describeConfig(config), () => []);
    return;
  }
  const log = createLogger({ fields: { component: 'worker' } });
  const s3 = createS3Client(config.s3);
  const store = new ArchiveStore(s3, config.s3, log);
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.info('signal', { signal: sig });
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const summary = await runWorker(config, {
      store,
      logs: new S3TaskLogStore(s3, config.s3),
      log,
      signal: controller.signal,
    });
    const { results, ...counts } = summary;
    printResult(
      opts.json,
      {
        ...counts,
        tasks: results.map((r) => ({
          taskId: r.taskId,
          runId: r.runId,
          ...r.resolution,
          sha256: r.archive?.sha256,
          url: r.archive?.url,
        })),
      },
      () => [
        ...(counts.stopReason ? [`stopped: ${counts.stopReason}`] : []),
        `claimed ${counts.claimed}: ${counts.completed} completed, ${counts.failed} failed, ` +
          `${counts.exception} exception, ${counts.abandoned} abandoned`,
      ],
    );
  } finally {
    s3.destroy(); // no idle keep-alive sockets holding the process open
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
