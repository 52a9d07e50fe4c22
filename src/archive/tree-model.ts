// The tree an archive describes, modelled in memory while it is unpacked (or packed), so that
// every entry is judged against what the entries before it built, never against the filesystem:
// - a path may not go through an earlier symlink (no entry is written through a link);
// - a symlink is resolved as the kernel would, through the links created so far, and refused when
//   it leaves the tree at any depth of chaining (`s -> .` then `etc -> s/s/s/../../../etc`);
// - a link that resolves through a path that does not exist yet is re-resolved when a later link
//   appears at that path, so a link cannot be made to escape afterwards;
// - hard links name an earlier regular file; duplicates and conflicts are refused;
// - names and link targets are bounded (PATH_MAX 4,096 bytes, NAME_MAX 255 bytes per component).
import { ArchiveError } from '../util/errors.js';
import { unsafeReason } from './tree.js';

/** Longest entry name or link target accepted, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest path component accepted, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_COMPONENT_BYTES = 255;
/** Symlinks followed while resolving one link before it counts as a loop (Linux: 40). */
export const MAX_LINK_HOPS = 40;
/** Path components examined while resolving one link (bounds the work on hostile chains). */
const MAX_RESOLVE_STEPS = 8192;
/** Paths that do not exist yet one link may resolve through (each is watched for a later link). */
const MAX_MISSING = 64;

export type ModelKind = 'file' | 'dir' | 'symlink';

interface Node {
  kind: ModelKind;
  target?: string;
}

export function refusal(
  entry: string,
  why: string,
  code: 'unsafe-path' | 'corrupt' = 'unsafe-path',
) {
  return new ArchiveError(code, `refused archive entry ${JSON.stringify(shorten(entry))}: ${why}`, {
    entry: shorten(entry),
  });
}

/** Entry names in messages: whole up to 300 characters, else the start and the length. */
function shorten(s: string): string {
  return s.length <= 300 ? s : `${s.slice(0, 120)}…(${Buffer.byteLength(s)} bytes)`;
}

/** Why a name or link target is too long, or null. */
export function lengthReason(what: 'name' | 'link target', s: string): string | null {
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes > MAX_PATH_BYTES) {
    return `${what} is ${bytes} bytes long, over the limit of ${MAX_PATH_BYTES}`;
  }
  for (const c of s.split('/')) {
    const n = Buffer.byteLength(c, 'utf8');
    if (n > MAX_COMPONENT_BYTES) {
      return `${what} has a component of ${n} bytes, over the limit of ${MAX_COMPONENT_BYTES}`;
    }
  }
  return null;
}

/** Normalise an entry name: no trailing slash, no leading './'. '' means the archive root. */
export function entryPath(name: string): string {
  let p = name.replace(/\/+$/, '');
  while (p.startsWith('./')) p = p.slice(2);
  return p === '.' ? '' : p;
}

export class TreeModel {
  private readonly nodes = new Map<string, Node>();
  /** Paths that do not exist yet → the links whose resolution went through them. */
  private readonly pending = new Map<string, Set<string>>();

  /** Kind of `rel` as built so far (directories implied by deeper entries included). */
  kind(rel: string): ModelKind | undefined {
    return rel === '' ? 'dir' : this.nodes.get(rel)?.kind;
  }

  /**
   * Check the entry at `name` (as written in the archive) and record it. Returns the normalised
   * path ('' for the root directory). Throws 'unsafe-path' (or 'corrupt' for duplicates).
   */
  add(name: string, kind: ModelKind | 'hardlink', linkTarget = ''): string {
    const long = lengthReason('name', name);
    if (long) throw refusal(name, long);
    const rel = entryPath(name);
    if (rel === '') {
      if (kind === 'dir') return rel;
      throw refusal(name, `a ${kind} at the root of the tree`);
    }
    const why = unsafeReason(rel);
    if (why) throw refusal(name, why);
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const k = this.nodes.get(prefix)?.kind;
      if (k === 'symlink')
        throw refusal(name, `path goes through the symlink ${JSON.stringify(prefix)}`);
      if (k === 'file')
        throw refusal(name, `path goes through the file ${JSON.stringify(prefix)}`, 'corrupt');
    }
    const existing = this.nodes.get(rel);
    if (existing) {
      if (existing.kind === 'dir' && kind === 'dir') return rel;
      throw refusal(name, `duplicate or conflicting entry (already a ${existing.kind})`, 'corrupt');
    }
    if (kind === 'symlink') {
      const bad = this.badTarget(linkTarget);
      if (bad) throw refusal(name, `symlink to ${JSON.stringify(shorten(linkTarget))}: ${bad}`);
    }
    if (kind === 'hardlink') {
      const long = lengthReason('link target', linkTarget);
      if (long) throw refusal(name, long);
      const to = entryPath(linkTarget);
      if (unsafeReason(to) || this.nodes.get(to)?.kind !== 'file') {
        throw refusal(
          name,
          `hard link to ${JSON.stringify(shorten(linkTarget))} escapes the tree or names no earlier file`,
        );
      }
    }
    // implied parent directories
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (!this.nodes.has(prefix)) this.nodes.set(prefix, { kind: 'dir' });
    }
    const node: Node =
      kind === 'symlink'
        ? { kind, target: linkTarget }
        : { kind: kind === 'hardlink' ? 'file' : kind };
    this.nodes.set(rel, node);
    if (kind === 'symlink') {
      const escape = this.resolve(rel, linkTarget);
      if (escape) {
        this.nodes.delete(rel);
        throw refusal(name, `symlink to ${JSON.stringify(shorten(linkTarget))} ${escape}`);
      }
    }
    // Links that resolved through this path while it did not exist resolve differently now.
    if (kind === 'symlink') {
      for (const link of this.dependents(rel)) {
        const escape = this.resolve(link, this.nodes.get(link)!.target!);
        if (escape) {
          this.nodes.delete(rel);
          throw refusal(
            name,
            `symlink to ${JSON.stringify(shorten(linkTarget))} makes the earlier symlink ${JSON.stringify(link)} ${escape}`,
          );
        }
      }
    }
    return rel;
  }

  private badTarget(t: string): string | null {
    if (t === '') return 'empty link target';
    const long = lengthReason('link target', t);
    if (long) return long;
    if (t.includes('\0')) return 'NUL byte in link target';
    if (t.startsWith('/') || /^[A-Za-z]:[\\/]/.test(t)) return 'absolute link target';
    return null;
  }

  /** Links whose resolution went through `rel`, or a path above it, while that did not exist. */
  private dependents(rel: string): Set<string> {
    const out = new Set<string>();
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      for (const l of this.pending.get(parts.slice(0, i).join('/')) ?? []) out.add(l);
    }
    return out;
  }

  /**
   * Resolve the symlink at `rel` with `target` through the model. Returns why it escapes (a
   * phrase), or null when it stays inside. Paths it passes that do not exist yet are remembered.
   */
  private resolve(rel: string, target: string): string | null {
    const stack = rel.split('/').slice(0, -1);
    const queue = target.split('/');
    let hops = 0;
    let steps = 0;
    let missing = 0;
    while (queue.length > 0) {
      if (++steps > MAX_RESOLVE_STEPS)
        return `takes more than ${MAX_RESOLVE_STEPS} steps to resolve`;
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (stack.length === 0) return 'resolves outside the tree';
        stack.pop();
        continue;
      }
      stack.push(c);
      const key = stack.join('/');
      const node = this.nodes.get(key);
      if (node?.kind === 'symlink') {
        if (++hops > MAX_LINK_HOPS) return `is a symlink loop (more than ${MAX_LINK_HOPS} links)`;
        stack.pop();
        const t = node.target!;
        if (t.startsWith('/')) return 'resolves outside the tree';
        queue.unshift(...t.split('/'));
      } else if (!node && (stack.length === 1 || this.nodes.has(stack.slice(0, -1).join('/')))) {
        // the topmost path of this resolution that does not exist (yet)
        if (++missing > MAX_MISSING)
          return `goes through more than ${MAX_MISSING} paths that do not exist`;
        let set = this.pending.get(key);
        if (!set) this.pending.set(key, (set = new Set()));
        set.add(rel);
      }
    }
    return null;
  }
}
