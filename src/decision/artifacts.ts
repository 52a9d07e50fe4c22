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

/** Entries stringified, and written, at a time. */
const BATCH = 500;

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
  // object: only the braces around each batch go
  let batch: Record<string, unknown> = {};
  let size = 0;
  let first = true;
  const flush = (): string => {
    const text = JSON.stringify(batch, null, 2);
    batch = {};
    size = 0;
    if (text === '{}') return '';
    const body = text.slice(1, -2); // without '{' and '\n}'
    const out = first ? '{' + body : ',' + body;
    first = false;
    return out;
  };
  for (const [k, v] of Object.entries(value)) {
    batch[k] = v;
    if (++size >= BATCH) {
      const out = flush();
      if (out) yield out;
    }
  }
  const rest = flush();
  yield first ? '{}\n' : rest + '\n}\n';
}

async function writeAtomic(file: string, value: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fh = await fs.open(tmp, 'w');
  try {
    for (const chunk of serialiseChunks(value)) await fh.write(chunk);
  } finally {
    await fh.close();
  }
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
