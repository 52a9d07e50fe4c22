// hgweb over HTTP: json-rev resolves the revision, then archive/<node>.tar.gz/<subdir> is spooled
// safely into a private staging dir.
import path from 'node:path';
import { ArchiveError, errorMessage, isArchiveError } from '../../util/errors.js';
import { httpGet, readText, type HttpOptions, type HttpResponse } from '../../util/http.js';
import { walkDisk, type TreeSource } from '../tree.js';
import { diskSource } from './disk.js';
import { spoolHgArchive } from './hg-spool.js';
import {
  checkAllowed,
  FULL_NODE,
  inStaging,
  isAllowedUrl,
  notFound,
  remove,
  trimSlash,
  type SourceContext,
  type SourceDriver,
} from './source.js';

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
    allowUrl: (u) => isAllowedUrl(u.href, p?.allowRepos ?? []),
    headers: { accept: url.includes('/json-rev/') ? 'application/json' : '*/*' },
  };
}

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

/** Refuse an answer to the subdir archive's GET that is not a 200, with what it means. */
function checkArchiveAnswer(
  res: HttpResponse,
  url: string,
  base: string,
  subdir: string,
  revision: string,
): void {
  if (res.status === 200) return;
  res.body.resume();
  if (res.status === 404 || res.status === 410) {
    throw notFound(base, revision, subdir, `HTTP ${res.status} for the subdir archive`);
  }
  if (res.status === 403) {
    throw new ArchiveError(
      'not-allowed',
      `${base} refused the archive (HTTP 403): is web.allow-archive set?`,
    );
  }
  throw new ArchiveError('unavailable', `GET ${url} answered HTTP ${res.status}`);
}

async function openHgweb(
  spec: { kind: 'hgweb'; url: string },
  revision: string,
  subdir: string,
  ctx: SourceContext,
): Promise<TreeSource> {
  const base = trimSlash(spec.url);
  const node = await hgwebDriver.resolve(spec, revision, subdir, ctx, true);
  const url = `${base}/archive/${node}.tar.gz/${subdir.split('/').map(encodeURIComponent).join('/')}`;
  return inStaging(ctx, 'hgweb', async (stage) => {
    const tree = path.join(stage, 'tree');
    const res = await httpGet(url, httpOptions(ctx, url));
    checkArchiveAnswer(res, url, base, subdir, revision === node ? node : `${revision} (${node})`);
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
  });
}

export const hgwebDriver: SourceDriver<'hgweb'> = {
  kind: 'hgweb',
  async resolve(spec, revision, subdir, ctx, trustFullNode) {
    const base = trimSlash(spec.url);
    checkAllowed(base, ctx.policy);
    if (trustFullNode && FULL_NODE.test(revision)) return revision;
    return hgwebResolve(base, revision, ctx, subdir);
  },
  open: openHgweb,
};
