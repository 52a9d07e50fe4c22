// Lookups and known-good deploys: `find`, `fetch`, `serve`, `promote`, `deploy`. Thin: parse
// flags, build clients, call src/lookup/, print (human lines, or one JSON document with --json).
import type { Command } from 'commander';
import path from 'node:path';
import type { ClientOptions } from '../../taskcluster/client.js';
import { ArchiveError } from '../../util/errors.js';
import { createLogger, redact } from '../../util/log.js';
import type { DeployResult } from '../../lookup/deploy.js';
import { DEFAULT_INDEX_PREFIX } from '../../contract/index.js';
import type { FoundArchive } from '../../lookup/find.js';
import type { ManifestIO, ManifestLocation } from '../../lookup/manifest.js';
import type { PromoteResult } from '../../lookup/promote.js';
import { printResult } from '../output.js';

// Each command loads its stage's modules only when it runs, so `--help` and light commands
// start fast (the AWS SDK, taskcluster-client and SQLite are not loaded to print help).
const load = {
  tc: () => import('../../taskcluster/client.js'),
  find: () => import('../../lookup/find.js'),
  manifest: () => import('../../lookup/manifest.js'),
};

/** Taskcluster clients for the lookup commands (see clientOptions). */
async function clientsFor(flags: TcFlags, anonymous = true) {
  const tc = await load.tc();
  const options = clientOptions(flags, tc.optionsFromEnv(), anonymous);
  return { clients: tc.makeClients(options), options };
}

interface TcFlags {
  rootUrl?: string;
  indexPrefix?: string;
}

/** Anonymous clients are enough for the index and public artifacts; env credentials are used when set. */
function clientOptions(
  flags: TcFlags,
  env: ClientOptions | undefined,
  anonymous = true,
): ClientOptions {
  const rootUrl = (flags.rootUrl ?? env?.rootUrl)?.replace(/\/+$/, '');
  if (!rootUrl) {
    throw new ArchiveError(
      'usage',
      'no Taskcluster root URL: pass --root-url or set TASKCLUSTER_ROOT_URL',
    );
  }
  const o: ClientOptions = { rootUrl };
  if (!anonymous && env?.credentials && (!flags.rootUrl || env.rootUrl === rootUrl)) {
    redact(env.credentials.accessToken);
    o.credentials = env.credentials;
  }
  return o;
}

function withTcFlags(cmd: Command): Command {
  return cmd
    .option('--root-url <url>', 'Taskcluster root URL (default: $TASKCLUSTER_ROOT_URL)')
    .option('--index-prefix <prefix>', 'index namespace prefix', DEFAULT_INDEX_PREFIX);
}

async function manifestIO(loc: ManifestLocation): Promise<ManifestIO> {
  if (loc.kind !== 's3') return {};
  const { createS3Client, s3SettingsFromEnv } = await import('../../storage/settings.js');
  return { s3: createS3Client(s3SettingsFromEnv(process.env, { bucket: loc.bucket })) };
}

function foundLines(f: FoundArchive): string[] {
  return [
    `taskId:     ${f.taskId}`,
    `url:        ${f.url}`,
    ...(f.objectUrl ? [`object:     ${f.objectUrl}`] : []),
    `sha256:     ${f.sha256}`,
    `size:       ${f.size}`,
    `revision:   ${f.revision}${f.archiveRevision !== f.revision ? ` (archive made from ${f.archiveRevision})` : ''}`,
    `treeDigest: ${f.treeDigest}`,
    `created:    ${f.created ?? 'unknown'}`,
    `expires:    ${f.expires}`,
    `namespace:  ${f.namespace}`,
  ];
}

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(s.trim());
  if (!m)
    throw new ArchiveError('usage', `invalid interval ${JSON.stringify(s)}: e.g. 60s, 5m, 1h`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms =
    unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  if (ms < 100) throw new ArchiveError('usage', `interval ${s} is too short`);
  return ms;
}

function parseIntFlag(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new ArchiveError('usage', `${name} must be a whole number`);
    return n;
  };
}

/** `mozharness-archive find`. */
function findCommand(program: Command): void {
  withTcFlags(
    program
      .command('find')
      .description(
        'Find the archive of a revision (full or 12+ hex), a tree digest, or the latest one, in the ' +
          'Taskcluster Index. Prints taskId, artifact URL, sha256, size, revision, created, expires.',
      )
      .requiredOption('--project <project>', 'project (repository alias), e.g. mozilla-central')
      .option('--revision <rev>', 'full or short (12+ hex) revision')
      .option('--digest <treeDigest>', 'content digest of the harness tree (64 hex)')
      .option('--latest', 'the latest archive of the project')
      .option(
        '--level <level>',
        'your trust level for --digest: caches of this level and above are read, most trusted first (default: 1, every level)',
        parseIntFlag('--level'),
      )
      .option('--json', 'print one JSON document'),
  ).action(async (flags) => {
    const { clients } = await clientsFor(flags);
    const { findArchive } = await load.find();
    const found = await findArchive(clients, {
      project: flags.project,
      revision: flags.revision,
      digest: flags.digest,
      latest: flags.latest,
      level: flags.level,
      prefix: flags.indexPrefix,
    });
    printResult(flags.json, found, () => foundLines(found));
  });
}

/** `mozharness-archive fetch`. */
function fetchCommand(program: Command): void {
  withTcFlags(
    program
      .command('fetch')
      .description(
        'Find the archive of a revision, download it (progress bar on a terminal), verify its ' +
          'sha256, and unpack it safely and atomically into --dest (which must not exist or be empty).',
      )
      .requiredOption('--project <project>', 'project (repository alias)')
      .requiredOption('--revision <rev>', 'full or short (12+ hex) revision')
      .requiredOption('--dest <dir>', 'directory to unpack into')
      .option('--json', 'print one JSON document'),
  ).action(async (flags) => {
    const { clients } = await clientsFor(flags);
    const [{ findArchive }, { downloadAndUnpack }] = await Promise.all([
      load.find(),
      import('../../storage/fetch-archive.js'),
    ]);
    const found = await findArchive(clients, {
      project: flags.project,
      revision: flags.revision,
      prefix: flags.indexPrefix,
    });
    const dest = path.resolve(flags.dest);
    const unpacked = await downloadAndUnpack(found.objectUrl ?? found.url, dest, {
      sha256: found.sha256,
      size: found.size,
      progress: true,
    });
    const out = { ...found, dest, files: unpacked.files, bytes: unpacked.bytes };
    printResult(flags.json, out, () => [
      `fetched ${found.revision} (${found.sha256}) into ${dest}: ${unpacked.files} files`,
    ]);
  });
}

/** `mozharness-archive serve`. */
function serveCommand(program: Command): void {
  withTcFlags(
    program
      .command('serve')
      .description(
        'Run the HTTP lookup endpoint (relengapi-compatible): /v1/<project>/revision/<rev>, ' +
          '/v1/<project>/latest, /v1/digest/<treeDigest>, /v1/status/<taskId>, /archiver/hgmo/..., ' +
          '/__heartbeat__. On-demand builds use $TASKCLUSTER_CLIENT_ID/$TASKCLUSTER_ACCESS_TOKEN.',
      )
      .requiredOption('--config <file>', 'YAML configuration (schemas/lookup-config.json)')
      .option('--port <port>', 'port (0: any free port)', parseIntFlag('--port'), 8080)
      .option('--host <host>', 'address to listen on', '127.0.0.1')
      .option('--state-dir <dir>', 'where on-demand builds are recorded (default: config stateDir)')
      .option(
        '--metrics-port <port>',
        'serve Prometheus metrics on http://<host>:<port>/metrics (0: any free port)',
        parseIntFlag('--metrics-port'),
      )
      .option('--json', 'print the listening address as one JSON line'),
  ).action(async (flags) => {
    const [{ loadLookupConfig }, { createLookupService }] = await Promise.all([
      import('../../lookup/config.js'),
      import('../../lookup/serve.js'),
    ]);
    const config = loadLookupConfig(flags.config);
    if (flags.indexPrefix && flags.indexPrefix !== DEFAULT_INDEX_PREFIX) {
      config.indexPrefix = flags.indexPrefix;
    }
    const rootUrlFlag = flags.rootUrl ?? config.rootUrl;
    // queue.status needs `queue:status:<taskId>`, createTask the on-demand scopes: use the
    // environment's credentials when there are some (anonymous otherwise).
    const { clients: read, options: readOptions } = await clientsFor(
      { rootUrl: rootUrlFlag },
      false,
    );
    const write = read;
    const stateDir = flags.stateDir ?? config.stateDir ?? '.mozharness-archive/lookup';
    const log = createLogger({ fields: { service: 'lookup' } });
    const service = createLookupService(config, {
      index: read.index,
      queue: read.queue,
      createQueue: write.queue,
      rootUrl: readOptions.rootUrl,
      stateDir,
      log,
    });
    const url = await service.listen(flags.port, flags.host);
    const metrics =
      flags.metricsPort === undefined
        ? undefined
        : await service.metrics.listen(flags.metricsPort, flags.host);
    if (flags.json) {
      const doc = { url, stateDir, ...(metrics ? { metricsUrl: metrics.url } : {}) };
      process.stdout.write(JSON.stringify(doc) + '\n');
    } else {
      process.stdout.write(`lookup service listening on ${url}\n`);
      if (metrics) process.stdout.write(`metrics on ${metrics.url}\n`);
    }
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await metrics?.close();
    await service.close();
  });
}

/** `mozharness-archive promote`. */
function promoteCommand(program: Command): void {
  program
    .command('promote')
    .description(
      'Point a channel of a known-good manifest at the archive of a revision, after checking that ' +
        'its task completed and the object has the recorded sha256; the replaced entry is kept as ' +
        '`previous`. With --rollback, restore the previous entry.',
    )
    .requiredOption('--channel <name>', 'channel, e.g. release')
    .requiredOption('--manifest <where>', 'manifest file or s3://bucket/key')
    .option('--project <project>', 'project (repository alias)')
    .option('--revision <rev>', 'full or short (12+ hex) revision')
    .option('--rollback', 'restore the channel`s previous entry')
    .option('--by <name>', 'who promotes (default: $TASKCLUSTER_CLIENT_ID or user@host)')
    .option('--root-url <url>', 'Taskcluster root URL (default: $TASKCLUSTER_ROOT_URL)')
    .option('--index-prefix <prefix>', 'index namespace prefix', DEFAULT_INDEX_PREFIX)
    .option('--json', 'print one JSON document')
    .action(async (flags) => {
      const [{ parseManifestLocation }, { promote, rollback }] = await Promise.all([
        load.manifest(),
        import('../../lookup/promote.js'),
      ]);
      const loc = parseManifestLocation(flags.manifest);
      const io = await manifestIO(loc);
      const log = createLogger({ fields: { command: 'promote' } });
      let result: PromoteResult;
      if (flags.rollback) {
        if (flags.project || flags.revision) {
          throw new ArchiveError('usage', '--rollback takes no --project or --revision');
        }
        result = await rollback(
          { io, log },
          { channel: flags.channel, manifest: loc, promotedBy: flags.by },
        );
      } else {
        if (!flags.project || !flags.revision) {
          throw new ArchiveError('usage', 'promote needs --project and --revision (or --rollback)');
        }
        const { clients } = await clientsFor(flags, false);
        result = await promote(
          { index: clients.index, queue: clients.queue, io, log },
          {
            channel: flags.channel,
            manifest: loc,
            project: flags.project,
            revision: flags.revision,
            prefix: flags.indexPrefix,
            promotedBy: flags.by,
          },
        );
      }
      printResult(flags.json, result, () => [
        `${flags.rollback ? 'rolled back' : 'promoted'} ${result.channel} in ${result.manifest}: ` +
          `${result.entry.project} ${result.entry.revision} (${result.entry.sha256})`,
        ...(result.previous
          ? [`previous: ${result.previous.revision} (${result.previous.sha256})`]
          : []),
      ]);
    });
}

/** `mozharness-archive deploy`. */
function deployCommand(program: Command): void {
  program
    .command('deploy')
    .description(
      'Deploy the archive a manifest channel points at into DIR/versions/<sha256>/ and switch the ' +
        'DIR/current symlink atomically; with --watch, poll the manifest (ETag) and redeploy on ' +
        'change. Failures leave DIR/current untouched. One agent per DIR (lock file).',
    )
    .requiredOption('--manifest <where>', 'manifest file, http(s) URL or s3://bucket/key')
    .requiredOption('--channel <name>', 'channel to follow')
    .requiredOption('--root <dir>', 'deploy root')
    .option('--keep <n>', 'versions to keep', parseIntFlag('--keep'), 3)
    .option('--watch', 'keep polling the manifest')
    .option('--interval <duration>', 'poll interval with --watch (e.g. 60s, 5m)', '60s')
    .option('--json', 'print one JSON document (one line per pass with --watch)')
    .action(async (flags) => {
      const [{ parseManifestLocation }, { deploy, watch }] = await Promise.all([
        load.manifest(),
        import('../../lookup/deploy.js'),
      ]);
      const loc = parseManifestLocation(flags.manifest);
      const log = createLogger({ fields: { command: 'deploy', channel: flags.channel } });
      const opts = {
        manifest: loc,
        channel: flags.channel,
        root: path.resolve(flags.root),
        keep: flags.keep,
        io: await manifestIO(loc),
        progress: true,
        log,
      };
      if (!flags.watch) {
        const r = await deploy(opts);
        printResult(flags.json, r, () => [describeDeploy(r)]);
        return;
      }
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      await watch({
        ...opts,
        intervalMs: parseDuration(flags.interval),
        signal: ac.signal,
        onPass: (r) => {
          if (r instanceof Error) return;
          if (r.outcome === 'not-modified') return;
          if (flags.json) process.stdout.write(JSON.stringify(r) + '\n');
          else process.stdout.write(describeDeploy(r) + '\n');
        },
      });
    });
}

export function register(program: Command): void {
  findCommand(program);
  fetchCommand(program);
  serveCommand(program);
  promoteCommand(program);
  deployCommand(program);
}

function describeDeploy(r: DeployResult): string {
  if (r.outcome === 'deployed') return `deployed ${r.revision} (${r.sha256}); current switched`;
  if (r.outcome === 'unchanged') return `already current: ${r.revision} (${r.sha256})`;
  return 'manifest unchanged';
}
