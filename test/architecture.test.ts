// The import direction of ARCHITECTURE.md: each folder of src/ may import only the folders listed
// for it (its lower layers). A new import against that direction fails here, naming the file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/** folder → the folders it may import (besides itself). Keep in step with ARCHITECTURE.md. */
export const ALLOWED: Record<string, string[]> = {
  util: [],
  generated: [],
  taskcluster: ['util', 'generated'],
  contract: ['taskcluster', 'util', 'generated'],
  archive: ['util', 'generated'],
  storage: ['archive', 'util', 'generated'],
  decision: ['contract', 'archive', 'taskcluster', 'util', 'generated'],
  worker: ['contract', 'archive', 'storage', 'taskcluster', 'util', 'generated'],
  actions: ['decision', 'contract', 'archive', 'taskcluster', 'util', 'generated'],
  lookup: ['contract', 'archive', 'storage', 'taskcluster', 'util', 'generated'],
  local: [
    'actions',
    'decision',
    'worker',
    'lookup',
    'contract',
    'archive',
    'storage',
    'taskcluster',
    'util',
    'generated',
  ],
  cli: [
    'local',
    'actions',
    'decision',
    'worker',
    'lookup',
    'contract',
    'archive',
    'storage',
    'taskcluster',
    'util',
    'generated',
  ],
};

/**
 * Single files a lower layer may import from a higher one, each with its reason. They import
 * nothing of their own folder's higher parts, so no cycle goes through them.
 */
export const EXCEPTIONS: Record<string, string> = {
  // the decision task publishes actions.json: it needs the action declarations (not the callbacks)
  'decision -> src/actions/registry.ts': 'actions.json is rendered by the decision task',
};

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? files(p) : /\.ts$/.test(d.name) ? [p] : [];
  });
}

/** Relative imports of a source file (static, re-exports and dynamic import()). */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re =
    /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s+'([^']+)'/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec && spec.startsWith('.')) out.push(spec);
  }
  return out;
}

describe('architecture: import direction', () => {
  it('every folder of src/ is in the table', () => {
    const folders = fs
      .readdirSync('src', { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    assert.deepEqual(folders, Object.keys(ALLOWED).sort());
  });

  it('no import goes against the direction of ARCHITECTURE.md', () => {
    const wrong: string[] = [];
    for (const file of files('src')) {
      const from = file.split(path.sep)[1]!;
      for (const spec of importsOf(fs.readFileSync(file, 'utf8'))) {
        const target = path.normalize(path.join(path.dirname(file), spec)).replace(/\.js$/, '.ts');
        const to = target.split(path.sep)[1]!;
        if (to === from || ALLOWED[from]?.includes(to)) continue;
        if (EXCEPTIONS[`${from} -> ${target.split(path.sep).join('/')}`]) continue;
        wrong.push(`${file} imports ${spec} (${from} -> ${to})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the checker sees static, type-only, re-export and dynamic imports', () => {
    const text = [
      "import { a } from '../x/a.js';",
      "import type { B } from '../y/b.js';",
      "export * from './c.js';",
      "const d = await import('../z/d.js');",
      "import 'node:fs';",
    ].join('\n');
    assert.deepEqual(importsOf(text).sort(), ['../x/a.js', '../y/b.js', '../z/d.js', './c.js']);
  });
});
