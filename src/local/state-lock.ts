// One running instance per state directory. `startEmbedded` takes an exclusive lock file
// (`<stateDir>/local.lock`, holding the owner's pid and start time as JSON) before it opens the
// database, so two `local up` (or `local run`) on one directory cannot both run against the same
// database and port settings. A second instance is refused naming the pid that holds the lock; a
// lock left by a process that no longer exists is taken over. The file is created with O_EXCL
// (link of a fully written temporary file), so two starting instances never both win.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArchiveError, errorMessage } from '../util/errors.js';

const STATE_LOCK_FILE = 'local.lock';

export interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

export interface StateLock {
  file: string;
  /** Remove the lock (idempotent; only if it is still ours). */
  release(): void;
}

/** True when a process with this pid exists (EPERM: it exists but belongs to someone else). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof parsed.pid !== 'number') return undefined;
    return {
      pid: parsed.pid,
      hostname: String(parsed.hostname ?? ''),
      startedAt: String(parsed.startedAt ?? ''),
    };
  } catch {
    return undefined;
  }
}

/** Create `file` atomically with `content`; false when it already exists. */
function createExclusive(file: string, content: string): boolean {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o644 });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Whether the recorded owner is gone (same host and no such process). */
function isStale(owner: LockOwner | undefined): boolean {
  if (!owner) return true;
  if (owner.hostname && owner.hostname !== os.hostname()) return false;
  return !processAlive(owner.pid);
}

function refuse(stateDir: string, file: string, owner: LockOwner | undefined): never {
  const who = owner
    ? `process ${owner.pid}${owner.hostname && owner.hostname !== os.hostname() ? ` on ${owner.hostname}` : ''}` +
      (owner.startedAt ? ` (since ${owner.startedAt})` : '')
    : 'another process';
  throw new ArchiveError(
    'conflict',
    `the state directory ${stateDir} is in use by ${who}: stop it, or use another --state-dir ` +
      `(lock file ${file})`,
    { stateDir, lockFile: file, ...(owner ? { pid: owner.pid } : {}) },
  );
}

/** Take the exclusive lock of a state directory, or throw ArchiveError('conflict') naming the holder. */
export function lockStateDir(stateDir: string): StateLock {
  const file = path.join(stateDir, STATE_LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
  };
  const content = JSON.stringify(me) + '\n';
  try {
    fs.mkdirSync(stateDir, { recursive: true });
  } catch (e) {
    throw new ArchiveError(
      'invalid-config',
      `cannot create state directory ${stateDir}: ${errorMessage(e)}`,
      { stateDir },
      { cause: e },
    );
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(file, content)) return held(file, content);
    const owner = readOwner(file);
    if (!isStale(owner)) refuse(stateDir, file, owner);
    // Stale: move it aside, then check that what was moved is the stale lock just read (another
    // starting instance may have replaced it meanwhile); if not, put it back and refuse.
    const aside = `${file}.stale.${process.pid}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readOwner(aside);
    if (moved && owner && (moved.pid !== owner.pid || moved.startedAt !== owner.startedAt)) {
      try {
        fs.linkSync(aside, file);
      } catch {
        // someone else holds it now; they are the owner either way
      }
      fs.rmSync(aside, { force: true });
      refuse(stateDir, file, moved);
    }
    fs.rmSync(aside, { force: true });
  }
  refuse(stateDir, file, readOwner(file));
}

function held(file: string, content: string): StateLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      if (fs.readFileSync(file, 'utf8') === content) fs.rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
  process.on('exit', release);
  return { file, release };
}
