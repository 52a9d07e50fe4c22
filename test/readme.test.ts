// The README opens with the two commands of a fresh machine, and they exist as written: CI runs
// the test command through .ci/run.
import assert from 'node:assert/strict';
import fs from 'node:fs';

describe('README', () => {
  const readme = fs.readFileSync('README.md', 'utf8');
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));

  it('starts with exactly the two commands: npm start, and npm ci && npm test', () => {
    const block = /^```(?:sh|bash)?\n([\s\S]*?)```/m.exec(readme);
    assert.ok(block, 'a code block');
    assert.ok(readme.indexOf(block[0]) < 400, 'the commands come first');
    const commands = block[1]!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(commands, ['npm ci && npm start', 'npm test']);
  });

  it('names scripts that exist, and .ci/run calls the test command', () => {
    assert.ok(pkg.scripts.start, 'npm start');
    assert.ok(pkg.scripts.test, 'npm test');
    assert.match(pkg.scripts.start, /local run/);
    assert.match(fs.readFileSync('.ci/run', 'utf8'), /^npm test\b/m);
  });

  it('documents every command of the CLI', async () => {
    const { buildProgram } = await import('../src/cli/main.js');
    const names: string[] = [];
    for (const c of (await buildProgram()).commands) {
      if (c.commands.length) for (const s of c.commands) names.push(`${c.name()} ${s.name()}`);
      else names.push(c.name());
    }
    const missing = names.filter((n) => !readme.includes(`mozharness-archive ${n}`));
    assert.deepEqual(missing, [], 'commands missing from README.md');
  });
});
