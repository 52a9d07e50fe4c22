// The decision task's artifacts: written a chunk at a time, the bytes are exactly those of one
// JSON.stringify(value, null, 2), whatever the entries' sizes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  serialise,
  serialiseChunks,
  writeDecisionArtifacts,
  type DecisionArtifacts,
} from '../src/decision/artifacts.js';

function sample(entries: number, size: (i: number) => number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < entries; i++) {
    out[`task-${i}/opt`] = {
      label: `task-${i}`,
      env: { NOTE: 'é✓🦊'.repeat(size(i)) },
      args: ['--this-chunk', i],
      nested: { deeper: [{ x: null, y: true }] },
    };
  }
  return out;
}

describe('decision: artifacts', () => {
  const values: Array<[string, unknown]> = [
    ['an empty object', {}],
    ['a string', 'parameters: 1\n'],
    ['an array', ['a', 'b']],
    ['one entry', sample(1, () => 1)],
    ['5,000 small entries', sample(5000, () => 1)],
    ['entries of every size, some far over a chunk', sample(300, (i) => (i % 37) * (i % 5) * 100)],
  ];
  for (const [what, value] of values) {
    it(`chunks of ${what} join into JSON.stringify(value, null, 2)`, () => {
      assert.equal([...serialiseChunks(value)].join(''), serialise(value));
      if (typeof value !== 'string')
        assert.equal(serialise(value), JSON.stringify(value, null, 2) + '\n');
    });
  }

  it('writes each artifact whole, leaving no temporary file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-artifacts-'));
    try {
      const graph = sample(3000, (i) => i % 50);
      const artifacts = {
        'parameters.yml': 'project: x\n',
        'task-graph.json': graph,
        'label-to-taskid.json': {},
      } as unknown as DecisionArtifacts;
      const written = await writeDecisionArtifacts(dir, artifacts);
      assert.deepEqual(
        written.map((f) => path.basename(f)),
        Object.keys(artifacts),
      );
      for (const [name, value] of Object.entries(artifacts)) {
        assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), serialise(value));
      }
      assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(artifacts).sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves neither the artifact nor a temporary file when a value cannot be written', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mh-artifacts-'));
    try {
      // megabytes are written before the last entry fails to serialise
      const graph = sample(3000, () => 100);
      graph['last'] = { size: 1n };
      await assert.rejects(
        writeDecisionArtifacts(dir, { 'task-graph.json': graph } as unknown as DecisionArtifacts),
        /BigInt/,
      );
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
