// Phase 8: the decision task's artifacts, written atomically (temp file + rename) into the
// directory the decision task publishes as `public/`.
import fs from 'node:fs/promises';
import path from 'node:path';

export const EMPTY_ACTIONS = { version: 1, variables: {}, actions: [] as unknown[] };

export interface DecisionArtifacts {
  'parameters.yml': string;
  'full-task-graph.json': unknown;
  'target-tasks.json': unknown;
  'task-graph.json': unknown;
  'label-to-taskid.json': unknown;
  'optimizations.json': unknown;
  'actions.json': unknown;
  'runnable-jobs.json': unknown;
}

export function serialise(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2) + '\n';
}

/**
 * About how many characters of JSON are stringified at a time. Chunks this small stay in V8's
 * young generation and die there; megabyte strings would be allocated in the large-object space
 * and make the collector mark the whole graph again and again.
 */
const CHUNK_CHARS = 48 * 1024;

/** How many bytes are gathered before one write. */
const WRITE_BYTES = 1 << 20;

/**
 * The bytes of `serialise(value)`, produced a chunk at a time: a large object is written entry
 * by entry, so a graph of tens of thousands of tasks never exists as one string.
 */
export function* serialiseChunks(value: unknown): Generator<string> {
  if (typeof value === 'string' || !value || typeof value !== 'object' || Array.isArray(value)) {
    yield serialise(value);
    return;
  }
  // a batch of entries stringified as an object has the indentation it has in the whole
  // object: only the braces around each batch go. The batch size adapts to the entries' size.
  let batch: Record<string, unknown> = {};
  let size = 0;
  let limit = 16;
  let first = true;
  const flush = (): string => {
    const text = JSON.stringify(batch, null, 2);
    batch = {};
    size = 0;
    if (text.length > CHUNK_CHARS * 2 && limit > 1) limit >>= 1;
    else if (text.length < CHUNK_CHARS / 2 && limit < 4096) limit <<= 1;
    if (text === '{}') return '';
    const body = text.slice(1, -2); // without '{' and '\n}'
    const out = first ? '{' + body : ',' + body;
    first = false;
    return out;
  };
  for (const [k, v] of Object.entries(value)) {
    batch[k] = v;
    if (++size >= limit) {
      const out = flush();
      if (out) yield out;
    }
  }
  const rest = flush();
  yield first ? '{}\n' : rest + '\n}\n';
}

/** Write every byte of `buffers` (a short write goes on from where it stopped). */
async function writeAll(fh: fs.FileHandle, buffers: Buffer[], bytes: number): Promise<void> {
  const { bytesWritten } = await fh.writev(buffers);
  let rest = bytesWritten < bytes ? Buffer.concat(buffers).subarray(bytesWritten) : undefined;
  while (rest?.length) {
    const { bytesWritten: n } = await fh.write(rest);
    rest = rest.subarray(n);
  }
}

async function writeAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fh = await fs.open(tmp, 'w');
  // one write in flight while the next megabyte is stringified
  let inFlight: Promise<void> = Promise.resolve();
  try {
    let pending: Buffer[] = [];
    let bytes = 0;
    for (const chunk of serialiseChunks(value)) {
      const b = Buffer.from(chunk);
      pending.push(b);
      bytes += b.length;
      if (bytes >= WRITE_BYTES) {
        await inFlight;
        inFlight = writeAll(fh, pending, bytes);
        inFlight.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
        pending = [];
        bytes = 0;
      }
    }
    await inFlight;
    if (pending.length) await writeAll(fh, pending, bytes);
  } catch (e) {
    await inFlight.catch(() => {});
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fs.rename(tmp, file);
}

/** Write every artifact into `dir` (created if missing); returns the paths written. */
export async function writeDecisionArtifacts(
  dir: string,
  artifacts: DecisionArtifacts,
): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, value] of Object.entries(artifacts)) {
    const file = path.join(dir, name);
    await writeAtomic(file, value);
    written.push(file);
  }
  return written;
}
