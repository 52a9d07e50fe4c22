// Where a tree comes from: hgweb over HTTP, a local Mercurial repository, a local or remote git
// repository, or a plain directory (a checkout). Every source yields the same sorted tree model;
// contents are streamed, never the whole tree in memory.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError, errorMessage, isArchiveError } from '../util/errors.js';
import { backoffDelay, httpGet, readText, type HttpOptions } from '../util/http.js';
import { redactUrl, type Logger } from '../util/log.js';
import { ByteReader } from './bytes.js';
import { GIT_RUN_ENV, HG_RUN_ENV, runCommand } from './proc.js';
import {
  checkEntryPath,
  completeTree,
  diskEntry,
  fileMode,
  hasControl,
  LINK_MODE,
  linkStaysInside,
  walkDisk,
  type TreeEntry,
  type TreeSource,
} from './tree.js';
import { readTar } from './untar.js';

export type SourceSpec =
  | { kind: 'hgweb'; url: string }
  | { kind: 'git-remote'; url: string }
  | { kind: 'hg'; path: string }
  | { kind: 'git'; path: string }
  | { kind: 'dir'; path: string };

export interface FetchPolicy {
  allowRepos: string[];
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: number;
  maxRetryTimeMs?: number;
  /** Told the bytes each network source transferred (the subdir archive, git packs). */
  onFetchedBytes?: (bytes: number) => void;
}

export interface SourceLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export interface SourceContext {
  policy?: FetchPolicy;
  limits: SourceLimits;
  log: Logger;
  signal?: AbortSignal;
  tmpDir: string;
  onRequest?: (url: string) => void;
  /** Test hook: backoff base for retries (default 500 ms). */
  baseDelayMs?: number;
}

export const FULL_NODE = /^[0-9a-f]{40}$/;

export function describeSource(spec: SourceSpec): string {
  return 'url' in spec ? spec.url : spec.path;
}

export function checkRevision(revision: string): void {
  if (
    typeof revision !== 'string' ||
    revision === '' ||
    revision.length > 256 ||
    revision.startsWith('-') ||
    /\s/.test(revision) ||
    hasControl(revision)
  ) {
    throw new ArchiveError('usage', `invalid revision ${JSON.stringify(revision)}`);
  }
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/** True when `url` is one of the allowed repository prefixes (at a path boundary). */
export function isAllowedUrl(url: string, allowRepos: string[]): boolean {
  const u = trimSlash(url);
  return allowRepos.some((prefix) => {
    const p = trimSlash(prefix);
    return p !== '' && (u === p || u.startsWith(p + '/'));
  });
}

function checkAllowed(url: string, policy?: FetchPolicy): void {
  if (!policy || !isAllowedUrl(url, policy.allowRepos)) {
    throw new ArchiveError(
      'not-allowed',
      // The offending URL only (userinfo redacted): the allow-list is configuration and may
      // hold credentials, so it is never quoted into a task log.
      `repository ${redactUrl(url)} is not on the allow-list` +
        (policy?.allowRepos.length ? '' : ' (no repositories allowed)'),
      { repository: url },
    );
  }
}

function notFound(repository: string, revision: string, subdir: string, why: string) {
  return new ArchiveError(
    'not-found',
    `${why}: repository ${repository}, revision ${revision}, subdir ${subdir}`,
    { repository, revision, subdir },
  );
}

function httpOptions(ctx: SourceContext, url: string): HttpOptions {
  const p = ctx.policy;
  return {
    connectTimeoutMs: p?.connectTimeoutMs,
    idleTimeoutMs: p?.idleTimeoutMs,
    retries: p?.retries,
    maxRetryTimeMs: p?.maxRetryTimeMs,
    baseDelayMs: ctx.baseDelayMs,
    log: ctx.log,
    signal: ctx.signal,
    onRequest: ctx.onRequest,
    allowUrl: (u) => isAllowedUrl(u, p?.allowRepos ?? []),
    headers: { accept: url.includes('/json-rev/') ? 'application/json' : '*/*' },
  };
}

// ---------------------------------------------------------------------------------------------
// Revisions

async function hgwebResolve(base: string, revision: string, ctx: SourceContext, subdir: string) {
  const url = `${base}/json-rev/${encodeURIComponent(revision)}`;
  const res = await httpGet(url, httpOptions(ctx, url));
  if (res.status === 404 || res.status === 400) {
    res.body.resume();
    throw notFound(base, revision, subdir, 'unknown revision');
  }
  if (res.status !== 200) {
    res.body.resume();
    throw new ArchiveError('unavailable', `GET ${url} answered HTTP ${res.status}`);
  }
  let node: unknown;
  try {
    node = (JSON.parse(await readText(res.body, 64 * 1024 * 1024)) as { node?: unknown }).node;
  } catch (e) {
    if (isArchiveError(e)) throw e;
    throw new ArchiveError(
      'corrupt',
      `GET ${url}: not a JSON revision document (${errorMessage(e)})`,
    );
  }
  if (typeof node !== 'string' || !FULL_NODE.test(node)) {
    throw new ArchiveError('corrupt', `GET ${url}: no 40-hex "node" in the answer`);
  }
  return node;
}

async function hgResolve(repo: string, revision: string, subdir: string): Promise<string> {
  const r = await runCommand('hg', ['log', '-R', repo, `--rev=${revision}`, '-T', '{node}\n'], {
    env: HG_RUN_ENV(),
  });
  if (r.code !== 0) {
    if (/repository .* not found|no repository found/i.test(r.stderr)) {
      throw new ArchiveError('not-found', `${repo} is not a Mercurial repository`, {
        repository: repo,
      });
    }
    if (/unknown revision|not found|parse error|no such|filtered|ambiguous/i.test(r.stderr)) {
      throw notFound(repo, revision, subdir, 'unknown revision');
    }
    throw new ArchiveError('internal', `hg log failed in ${repo}: ${r.stderr.trim()}`);
  }
  const nodes = r.stdout.toString('utf8').trim().split('\n').filter(Boolean);
  if (nodes.length !== 1) {
    throw new ArchiveError(
      nodes.length ? 'usage' : 'not-found',
      `revision ${revision} names ${nodes.length} changesets in ${repo}, not one (subdir ${subdir})`,
    );
  }
  return nodes[0];
}

async function gitResolve(repo: string, revision: string, subdir: string): Promise<string> {
  const r = await runCommand(
    'git',
    ['-C', repo, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${revision}^{commit}`],
    { env: GIT_RUN_ENV() },
  );
  const node = r.stdout.toString('utf8').trim();
  if (r.code !== 0 || !FULL_NODE.test(node)) {
    if (/not a git repository/i.test(r.stderr)) {
      throw new ArchiveError('not-found', `${repo} is not a git repository`);
    }
    throw notFound(repo, revision, subdir, 'unknown revision');
  }
  return node;
}

/** Find the nearest enclosing checkout of `dir` (its root and kind), or null. */
export function findCheckout(dir: string): { kind: 'hg' | 'git'; root: string } | null {
  let d = path.resolve(dir);
  while (true) {
    if (fs.existsSync(path.join(d, '.hg'))) return { kind: 'hg', root: d };
    if (fs.existsSync(path.join(d, '.git'))) return { kind: 'git', root: d };
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/**
 * The full 40-hex revision `revision` names in `spec`. For hgweb a full node is still checked with
 * json-rev unless `trustFullNode`.
 */
export async function resolveIn(
  spec: SourceSpec,
  revision: string,
  subdir: string,
  ctx: SourceContext,
  trustFullNode = false,
): Promise<string> {
  checkRevision(revision);
  switch (spec.kind) {
    case 'hgweb': {
      const base = trimSlash(spec.url);
      checkAllowed(base, ctx.policy);
      if (trustFullNode && FULL_NODE.test(revision)) return revision;
      return hgwebResolve(base, revision, ctx, subdir);
    }
    case 'git-remote': {
      checkAllowed(spec.url, ctx.policy);
      if (FULL_NODE.test(revision)) return revision;
      return gitRemoteResolve(spec.url, revision, subdir, ctx);
    }
    case 'hg':
      return hgResolve(spec.path, revision, subdir);
    case 'git':
      return gitResolve(spec.path, revision, subdir);
    case 'dir': {
      const co = findCheckout(spec.path);
      if (FULL_NODE.test(revision)) return revision;
      if (co?.kind === 'git') return gitResolve(co.root, revision, subdir);
      if (co?.kind === 'hg') return hgResolve(co.root, revision, subdir);
      throw new ArchiveError(
        'usage',
        `${spec.path} is not a checkout: give the full 40-hex revision it holds (got ${revision})`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Directory trees (plain dirs, checkouts, staging dirs)

function diskSource(
  root: string,
  listed: string[] | null,
  repository: string,
  revision: string,
  log: Logger,
  cleanup?: () => Promise<void>,
): TreeSource {
  return {
    repository,
    revision,
    async *entries() {
      let items: TreeEntry[];
      if (listed === null) items = walkDisk(root);
      else {
        items = [];
        for (const rel of listed) {
          checkEntryPath(rel);
          const e = diskEntry(root, rel);
          if (!e)
            log.warn('archive.missing-file', {
              path: rel,
              reason: 'tracked but not in the working copy',
            });
          else if (e.type !== 'dir') items.push(e);
        }
      }
      yield* completeTree(items);
    },
    close: cleanup ?? (async () => {}),
  };
}

async function openDir(
  spec: { kind: 'dir'; path: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const root = path.resolve(spec.path);
  const node = await resolveIn(spec, revision, subdir, ctx);
  const subAbs = path.join(root, ...subdir.split('/'));
  if (!fs.existsSync(subAbs) || !fs.lstatSync(subAbs).isDirectory()) {
    throw notFound(root, node, subdir, 'subdir does not exist in the directory');
  }
  const co = findCheckout(root);
  const prefix = subdir + '/';
  if (co?.kind === 'git') {
    const r = await runCommand('git', ['-C', root, 'ls-files', '-z', '--', `:(literal)${subdir}`], {
      env: GIT_RUN_ENV(),
    });
    if (r.code !== 0)
      throw new ArchiveError('internal', `git ls-files failed in ${root}: ${r.stderr.trim()}`);
    const files = r.stdout
      .toString('utf8')
      .split('\0')
      .filter((p) => p.startsWith(prefix))
      .map((p) => p.slice(prefix.length));
    return diskSource(subAbs, [...new Set(files)], root, node, ctx.log);
  }
  if (co?.kind === 'hg') {
    const rel = path.relative(co.root, root).split(path.sep).filter(Boolean).join('/');
    const full = rel ? `${rel}/${subdir}` : subdir;
    const r = await runCommand('hg', ['files', '-0', '-R', co.root, '-I', `path:${full}`], {
      cwd: co.root,
      env: HG_RUN_ENV(),
    });
    if (r.code !== 0 && r.code !== 1) {
      throw new ArchiveError('internal', `hg files failed in ${co.root}: ${r.stderr.trim()}`);
    }
    const fullPrefix = full + '/';
    const files = r.stdout
      .toString('utf8')
      .split('\0')
      .map((p) => p.split(path.sep).join('/'))
      .filter((p) => p.startsWith(fullPrefix))
      .map((p) => p.slice(fullPrefix.length));
    return diskSource(subAbs, files, root, node, ctx.log);
  }
  return diskSource(subAbs, null, root, node, ctx.log);
}

// ---------------------------------------------------------------------------------------------
// Local Mercurial: `hg archive` of the subdir into a private staging dir

async function staging(ctx: SourceContext, what: string): Promise<string> {
  await fs.promises.mkdir(ctx.tmpDir, { recursive: true });
  return fs.promises.mkdtemp(path.join(ctx.tmpDir, `mozharness-archive-${what}-`));
}

const remove = (dir: string) => fs.promises.rm(dir, { recursive: true, force: true });

async function openHg(
  spec: { kind: 'hg'; path: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const repo = path.resolve(spec.path);
  const node = await hgResolve(repo, revision, subdir);
  const stage = await staging(ctx, 'hg');
  try {
    const out = path.join(stage, 'out');
    const r = await runCommand(
      'hg',
      [
        'archive',
        '-R',
        repo,
        `--rev=${node}`,
        '-t',
        'files',
        '--no-decode',
        '--config',
        'ui.archivemeta=false',
        '-I',
        `path:${subdir}`,
        out,
      ],
      { env: HG_RUN_ENV(), signal: ctx.signal },
    );
    if (r.code !== 0) {
      if (/no files match/i.test(r.stderr)) throw notFound(repo, node, subdir, 'subdir not found');
      throw new ArchiveError('internal', `hg archive failed in ${repo}: ${r.stderr.trim()}`);
    }
    const tree = path.join(out, ...subdir.split('/'));
    if (!fs.existsSync(tree)) throw notFound(repo, node, subdir, 'subdir not found');
    return diskSource(tree, null, repo, node, ctx.log, () => remove(stage));
  } catch (e) {
    await remove(stage);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// hgweb: json-rev, then archive/<node>.tar.gz/<subdir>, spooled safely into a staging dir

function asCorrupt(e: unknown, url: string): unknown {
  if (isArchiveError(e)) {
    if (e.code === 'corrupt') {
      return new ArchiveError(
        'corrupt',
        `download of ${url} is corrupt: ${e.message}`,
        {},
        { cause: e },
      );
    }
    return e;
  }
  return new ArchiveError(
    'corrupt',
    `download of ${url} is truncated or corrupt: ${errorMessage(e)}`,
    {},
    { cause: e },
  );
}

/** Unpack hg's archive stream (prefix `<repo>-<rev12>/<subdir>/`) into `dest`, checking everything. */
async function spoolHgArchive(
  body: Readable,
  expectedLength: number | undefined,
  dest: string,
  subdir: string,
  limits: SourceLimits,
): Promise<number> {
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      if (expectedLength !== undefined && received !== expectedLength) {
        cb(
          new ArchiveError(
            'corrupt',
            `body is ${received} bytes, Content-Length said ${expectedLength}`,
          ),
        );
      } else cb();
    },
  });
  const gunzip = zlib.createGunzip();
  // pipeline propagates an error of any stage (even one that happened already) to the gunzip end
  const piped = pipeline(body, counter, gunzip).catch((e: unknown) => e);
  const links = new Set<string>();
  let top: string | undefined;
  let files = 0;
  let total = 0;
  await fs.promises.mkdir(dest, { recursive: true });
  for await (const entry of readTar(gunzip, 'hg archive')) {
    const name = entry.path.replace(/\/+$/, '');
    const slash = name.indexOf('/');
    const first = slash < 0 ? name : name.slice(0, slash);
    top ??= first;
    if (first !== top)
      throw new ArchiveError('unsafe-path', `entry ${JSON.stringify(entry.path)} outside ${top}/`);
    const inner = slash < 0 ? '' : name.slice(slash + 1);
    if (inner === '.hg_archival.txt' || inner === subdir || inner === '') continue;
    if (!inner.startsWith(subdir + '/')) {
      throw new ArchiveError(
        'unsafe-path',
        `entry ${JSON.stringify(entry.path)} is outside ${subdir}`,
      );
    }
    const rel = inner.slice(subdir.length + 1);
    checkEntryPath(rel);
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join('/'))) {
        throw new ArchiveError(
          'unsafe-path',
          `entry ${JSON.stringify(rel)} goes through a symlink`,
        );
      }
    }
    const abs = path.join(dest, ...parts);
    if (entry.type === 'dir') {
      await fs.promises.mkdir(abs, { recursive: true });
      continue;
    }
    await fs.promises.mkdir(path.dirname(abs), { recursive: true });
    if (entry.type === 'symlink') {
      if (!linkStaysInside(rel, entry.linkpath)) {
        throw new ArchiveError(
          'unsafe-path',
          `symlink ${JSON.stringify(rel)} -> ${JSON.stringify(entry.linkpath)} points outside the archived tree`,
        );
      }
      await fs.promises.symlink(entry.linkpath, abs);
      links.add(rel);
    } else if (entry.type === 'file') {
      if (++files > limits.maxFiles)
        throw new ArchiveError('limit-exceeded', `more than ${limits.maxFiles} files`);
      if (entry.size > limits.maxFileBytes) {
        throw new ArchiveError(
          'limit-exceeded',
          `${rel} is ${entry.size} bytes, over ${limits.maxFileBytes}`,
        );
      }
      total += entry.size;
      if (total > limits.maxTotalBytes) {
        throw new ArchiveError(
          'limit-exceeded',
          `tree over ${limits.maxTotalBytes} bytes at ${rel}`,
        );
      }
      const fh = await fs.promises.open(abs, 'wx', fileMode((entry.mode & 0o100) !== 0));
      try {
        for await (const chunk of entry.content) await fh.write(chunk);
      } finally {
        await fh.close();
      }
      await fs.promises.chmod(abs, fileMode((entry.mode & 0o100) !== 0));
    } else {
      throw new ArchiveError(
        'unsafe-path',
        `entry ${JSON.stringify(rel)} has unsupported type ${entry.type}`,
      );
    }
  }
  const failed = await piped;
  if (failed) throw failed;
  return files;
}

async function openHgweb(
  spec: { kind: 'hgweb'; url: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const base = trimSlash(spec.url);
  const node = await resolveIn(spec, revision, subdir, ctx, true);
  const url = `${base}/archive/${node}.tar.gz/${subdir.split('/').map(encodeURIComponent).join('/')}`;
  const stage = await staging(ctx, 'hgweb');
  const tree = path.join(stage, 'tree');
  try {
    const res = await httpGet(url, httpOptions(ctx, url));
    if (res.status === 404 || res.status === 410) {
      res.body.resume();
      throw notFound(
        base,
        revision === node ? node : `${revision} (${node})`,
        subdir,
        `HTTP ${res.status} for the subdir archive`,
      );
    }
    if (res.status === 403) {
      res.body.resume();
      throw new ArchiveError(
        'not-allowed',
        `${base} refused the archive (HTTP 403): is web.allow-archive set?`,
      );
    }
    if (res.status !== 200) {
      res.body.resume();
      throw new ArchiveError('unavailable', `GET ${url} answered HTTP ${res.status}`);
    }
    const len = res.headers['content-length'];
    const expected = typeof len === 'string' && /^\d+$/.test(len) ? Number(len) : undefined;
    ctx.log.info('archive.download', { url });
    const onBytes = ctx.policy?.onFetchedBytes;
    if (onBytes) res.body.on('data', (chunk: Buffer) => onBytes(chunk.length));
    const files = await spoolHgArchive(res.body, expected, tree, subdir, ctx.limits).catch((e) => {
      res.body.destroy();
      throw asCorrupt(e, url);
    });
    if (files === 0 && walkDisk(tree).length === 0) {
      throw notFound(base, node, subdir, 'no files in the subdir archive');
    }
    return diskSource(tree, null, base, node, ctx.log, () => remove(stage));
  } catch (e) {
    await remove(stage);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// git: ls-tree of <node>:<subdir>, contents through one `git cat-file --batch`

interface GitItem {
  path: string;
  mode: string;
  oid: string;
}

async function openGitRepo(
  repo: string,
  node: string,
  subdir: string,
  repository: string,
  ctx: SourceContext,
  cleanup?: () => Promise<void>,
): Promise<TreeSource> {
  const r = await runCommand(
    'git',
    ['-C', repo, 'ls-tree', '-r', '-z', '--end-of-options', `${node}:${subdir}`],
    {
      env: GIT_RUN_ENV(),
    },
  );
  if (r.code !== 0) throw notFound(repository, node, subdir, 'subdir not found');
  const items: GitItem[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, type, oid] = rec.slice(0, tab).split(' ');
    const p = rec.slice(tab + 1);
    if (type === 'commit') {
      ctx.log.warn('archive.submodule-skipped', { path: p });
      continue;
    }
    if (type !== 'blob') continue;
    items.push({ path: p, mode, oid });
  }
  const byPath = new Map(items.map((i) => [i.path, i]));
  const shells: TreeEntry[] = items.map((i) => ({
    path: i.path,
    type: i.mode === '120000' ? 'symlink' : 'file',
    mode: i.mode === '120000' ? LINK_MODE : fileMode(i.mode === '100755'),
    size: 0,
  }));
  return {
    repository,
    revision: node,
    async *entries() {
      const sorted = completeTree(shells);
      const child = spawn('git', ['-C', repo, 'cat-file', '--batch'], {
        env: GIT_RUN_ENV(),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.on('error', () => {});
      const reader = new ByteReader(child.stdout, 'git cat-file');
      try {
        for (const e of sorted) {
          if (e.type === 'dir') {
            yield e;
            continue;
          }
          const item = byPath.get(e.path)!;
          child.stdin.write(item.oid + '\n');
          const header = await reader.line().catch((err) => {
            throw new ArchiveError(
              'internal',
              `git cat-file failed: ${stderr || errorMessage(err)}`,
            );
          });
          const m = /^([0-9a-f]+) blob (\d+)$/.exec(header);
          if (!m)
            throw new ArchiveError(
              'corrupt',
              `git object ${item.oid} (${e.path}) is unreadable: ${header}`,
            );
          const size = Number(m[2]);
          if (e.type === 'symlink') {
            if (size > 4096) throw new ArchiveError('corrupt', `symlink ${e.path} target too long`);
            const target = (await reader.exact(size)) ?? Buffer.alloc(0);
            await reader.exact(1);
            yield { ...e, linkTarget: target.toString('utf8') };
            continue;
          }
          let consumed = 0;
          yield {
            ...e,
            size,
            read: async function* () {
              for await (const c of reader.chunks(size)) {
                consumed += c.length;
                yield c;
              }
            },
          };
          if (consumed < size) await reader.skip(size - consumed);
          await reader.exact(1); // LF after the content
        }
      } finally {
        child.stdin.end();
        // unread output must not keep the pipe (and the process) alive
        child.stdout.destroy();
        if (child.exitCode === null && child.signalCode === null) child.kill();
        await exited;
      }
    },
    close: cleanup ?? (async () => {}),
  };
}

async function openGit(
  spec: { kind: 'git'; path: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const repo = path.resolve(spec.path);
  const node = await gitResolve(repo, revision, subdir);
  return openGitRepo(repo, node, subdir, repo, ctx);
}

// ---------------------------------------------------------------------------------------------
// git over the network (or file://): fetch just that revision into a temporary bare repository

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

/** One `git fetch` from the promisor remote, retried on transient failures. */
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
  const retries = p.retries ?? 4;
  const maxRetryTimeMs = p.maxRetryTimeMs ?? 60_000;
  const start = Date.now();
  for (let attempt = 0; ; attempt++) {
    ctx.onRequest?.(url);
    const r = await runCommand(
      'git',
      [
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
      ],
      {
        env: GIT_RUN_ENV(),
        signal: ctx.signal,
        timeoutMs: maxRetryTimeMs + idleS * 1000,
        input,
      },
    );
    if (r.code === 0) return;
    const reason = r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`;
    if (GIT_PERMANENT.test(r.stderr)) throw notFound(url, what, subdir, `git fetch: ${reason}`);
    const delayMs = backoffDelay(attempt, ctx.baseDelayMs);
    if (attempt >= retries || Date.now() - start + delayMs > maxRetryTimeMs) {
      throw new ArchiveError(
        'unavailable',
        `git fetch ${url} ${what} failed after ${attempt + 1} attempt(s): ${reason}`,
      );
    }
    ctx.log.warn('git.retry', { url, attempt: attempt + 1, reason, delayMs });
    await new Promise((res) => setTimeout(res, delayMs));
  }
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

async function openGitRemote(
  spec: { kind: 'git-remote'; url: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  checkAllowed(spec.url, ctx.policy);
  checkRevision(revision);
  const stage = await staging(ctx, 'git');
  try {
    await initPartialRepo(stage, spec.url);
    const node = await fetchSubdir(stage, spec.url, revision, subdir, ctx);
    return await openGitRepo(stage, node, subdir, spec.url, ctx, () => remove(stage));
  } catch (e) {
    await remove(stage);
    throw e;
  }
}

/** Open the tree of `subdir` at `revision` in `spec`. Close it when done. */
export async function openSource(
  spec: SourceSpec,
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  checkRevision(revision);
  switch (spec.kind) {
    case 'hgweb':
      return openHgweb(spec, revision, subdir, ctx);
    case 'git-remote':
      return openGitRemote(spec, revision, subdir, ctx);
    case 'hg':
      return openHg(spec, revision, subdir, ctx);
    case 'git':
      return openGit(spec, revision, subdir, ctx);
    case 'dir':
      return openDir(spec, revision, subdir, ctx);
  }
}
