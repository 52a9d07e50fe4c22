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

async function writeAtomic(file: string, data: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fs.writeFile(tmp, data);
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
    await writeAtomic(file, serialise(value));
    written.push(file);
  }
  return written;
}
