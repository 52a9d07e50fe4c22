// git over the network (or file://): fetch just that revision into a temporary bare repository,
// then read it like a local one.
import fs from 'node:fs';
import path from 'node:path';
import { ArchiveError } from '../../util/errors.js';
import { TransientError, retrying } from '../../util/retry.js';
import { GIT_RUN_ENV, runCommand } from '../proc.js';
import { gitResolve, openGitRepo } from './git.js';
import {
  checkAllowed,
  FULL_NODE,
  inStaging,
  notFound,
  remove,
  type SourceContext,
  type SourceDriver,
} from './source.js';

const GIT_PERMANENT =
  /couldn't find remote ref|returned error: 4\d\d|not our ref|unadvertised object|does not appear to be a git repository|repository .* not found|not found|invalid refspec|bad revision/i;

/** Remote name of the staging repository: a promisor remote, so blobs may be left out. */
const GIT_REMOTE = 'origin';

/** Total size of the pack files in a repository (what fetches have brought so far). */
function packBytes(repo: string): number {
  const dir = path.join(repo, 'objects', 'pack');
  if (!fs.existsSync(dir)) return 0;
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.pack'))
    .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

/** `git fetch` with what keeps it on the allow-list and bounded: no redirects, a low-speed limit. */
function fetchCommand(repo: string, idleS: number, fetchArgs: string[]): string[] {
  return [
    '-C',
    repo,
    '-c',
    'protocol.file.allow=always',
    '-c',
    'http.followRedirects=false', // a redirect could leave the allow-list
    '-c',
    `http.lowSpeedLimit=1`,
    '-c',
    `http.lowSpeedTime=${idleS}`,
    '-c',
    'fetch.negotiationAlgorithm=noop', // an empty repository has nothing to negotiate
    'fetch',
    '--quiet',
    '--no-tags',
    '--no-recurse-submodules',
    ...fetchArgs,
  ];
}

/** One `git fetch` from the promisor remote, retried on transient failures (util/retry's policy). */
async function gitFetch(
  repo: string,
  url: string,
  fetchArgs: string[],
  what: string,
  subdir: string,
  ctx: SourceContext,
  input?: string,
): Promise<void> {
  const p = ctx.policy ?? { allowRepos: [] };
  const idleS = Math.max(1, Math.round((p.idleTimeoutMs ?? 30_000) / 1000));
  const maxRetryTimeMs = p.maxRetryTimeMs ?? 60_000;
  const attempt = async () => {
    ctx.onRequest?.(url);
    const r = await runCommand('git', fetchCommand(repo, idleS, fetchArgs), {
      env: GIT_RUN_ENV(),
      signal: ctx.signal,
      timeoutMs: maxRetryTimeMs + idleS * 1000,
      input,
    });
    if (r.code === 0) return;
    const reason = r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`;
    if (GIT_PERMANENT.test(r.stderr)) throw notFound(url, what, subdir, `git fetch: ${reason}`);
    throw new TransientError(reason);
  };
  await retrying(
    attempt,
    { retries: p.retries, maxRetryTimeMs, baseDelayMs: ctx.baseDelayMs, signal: ctx.signal },
    {
      onRetry: (n, e, delayMs) =>
        ctx.log.warn('git.retry', { url, attempt: n, reason: e.message, delayMs }),
      exhausted: (e, attempts) =>
        new ArchiveError(
          'unavailable',
          `git fetch ${url} ${what} failed after ${attempts} attempt(s): ${e.message}`,
        ),
    },
  );
}

/** A bare repository whose `origin` is a promisor remote with the blob:none filter. */
async function initPartialRepo(stage: string, url: string): Promise<void> {
  const steps: string[][] = [
    ['init', '--bare', '--quiet', stage],
    ['-C', stage, 'config', 'core.repositoryformatversion', '1'],
    ['-C', stage, 'config', 'extensions.partialClone', GIT_REMOTE],
    ['-C', stage, 'config', `remote.${GIT_REMOTE}.url`, url],
    ['-C', stage, 'config', `remote.${GIT_REMOTE}.promisor`, 'true'],
    ['-C', stage, 'config', `remote.${GIT_REMOTE}.partialclonefilter`, 'blob:none'],
  ];
  for (const args of steps) {
    const r = await runCommand('git', args, { env: GIT_RUN_ENV() });
    if (r.code !== 0) {
      throw new ArchiveError(
        'internal',
        `git ${args.slice(2).join(' ')} failed: ${r.stderr.trim()}`,
      );
    }
  }
}

/**
 * The objects under `subdir` at `node` that the repository does not hold yet (the blobs a
 * blob:none fetch left out). `rev-list --missing=print` lists them without fetching them.
 */
async function missingBlobs(repo: string, node: string, subdir: string, url: string) {
  const r = await runCommand(
    'git',
    [
      '-C',
      repo,
      'rev-list',
      '--objects',
      '--no-object-names',
      '--missing=print',
      '--end-of-options',
      `${node}:${subdir}`,
    ],
    { env: GIT_RUN_ENV() },
  );
  if (r.code !== 0) throw notFound(url, node, subdir, 'subdir not found');
  return r.stdout
    .toString('utf8')
    .split('\n')
    .filter((l) => l.startsWith('?'))
    .map((l) => l.slice(1));
}

/**
 * Fetch the commit and its trees without any blob (`--filter=blob:none`, depth 1), then the
 * subdir's blobs in one batch: a harness of 10 MB costs about 10 MB, not the whole commit. A
 * server that ignores the filter sends everything in the first fetch, and the second is skipped.
 */
async function fetchSubdir(
  stage: string,
  url: string,
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<string> {
  const common = ['--filter=blob:none', '--end-of-options', GIT_REMOTE];
  await gitFetch(stage, url, ['--depth', '1', ...common, revision], revision, subdir, ctx);
  const treeBytes = packBytes(stage);
  const node = await gitResolve(stage, 'FETCH_HEAD', subdir);
  if (FULL_NODE.test(revision) && node !== revision) {
    throw new ArchiveError('corrupt', `git fetch of ${revision} from ${url} gave ${node}`);
  }
  const missing = await missingBlobs(stage, node, subdir, url);
  if (missing.length > 0) {
    await gitFetch(
      stage,
      url,
      ['--no-write-fetch-head', '--stdin', ...common],
      `${missing.length} blobs of ${node}`,
      subdir,
      ctx,
      missing.join('\n') + '\n',
    );
  }
  const blobBytes = packBytes(stage) - treeBytes;
  ctx.policy?.onFetchedBytes?.(treeBytes + blobBytes);
  ctx.log.info('git.fetched', {
    url,
    revision: node,
    subdir,
    fetches: missing.length > 0 ? 2 : 1,
    commitAndTreeBytes: treeBytes,
    blobs: missing.length,
    blobBytes,
    packBytes: treeBytes + blobBytes,
  });
  return node;
}

async function gitRemoteResolve(
  url: string,
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<string> {
  ctx.onRequest?.(url);
  const r = await runCommand(
    'git',
    [
      '-c',
      'protocol.file.allow=always',
      '-c',
      'http.followRedirects=false',
      'ls-remote',
      '--end-of-options',
      url,
      revision,
    ],
    { env: GIT_RUN_ENV(), signal: ctx.signal, timeoutMs: ctx.policy?.maxRetryTimeMs ?? 60_000 },
  );
  if (r.code !== 0) {
    if (GIT_PERMANENT.test(r.stderr)) throw notFound(url, revision, subdir, 'repository not found');
    throw new ArchiveError('unavailable', `git ls-remote ${url} failed: ${r.stderr.trim()}`);
  }
  const lines = r.stdout.toString('utf8').trim().split('\n').filter(Boolean);
  const exact = lines
    .map((l) => l.split('\t'))
    .find(([, ref]) =>
      [
        revision,
        `refs/heads/${revision}`,
        `refs/tags/${revision}^{}`,
        `refs/tags/${revision}`,
      ].includes(ref),
    );
  const found = exact ?? lines.map((l) => l.split('\t'))[0];
  if (!found || !FULL_NODE.test(found[0]))
    throw notFound(url, revision, subdir, 'unknown revision');
  return found[0];
}

export const gitRemoteDriver: SourceDriver<'git-remote'> = {
  kind: 'git-remote',
  async resolve(spec, revision, subdir, ctx) {
    checkAllowed(spec.url, ctx.policy);
    if (FULL_NODE.test(revision)) return revision;
    return gitRemoteResolve(spec.url, revision, subdir, ctx);
  },
  async open(spec, revision, subdir, ctx) {
    checkAllowed(spec.url, ctx.policy);
    return inStaging(ctx, 'git', async (stage) => {
      await initPartialRepo(stage, spec.url);
      const node = await fetchSubdir(stage, spec.url, revision, subdir, ctx);
      return await openGitRepo(stage, node, subdir, spec.url, ctx, () => remove(stage));
    });
  },
};
