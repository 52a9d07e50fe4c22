import assert from 'node:assert/strict';
import { Command } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { commandModules } from '../src/cli/commands/index.js';

const names = (program: Command) => program.commands.map((c) => c.name());

describe('cli', () => {
  it('builds the program with its name and help', async () => {
    const program = await buildProgram();
    assert.equal(program.name(), 'mozharness-archive');
    assert.match(program.helpInformation(), /mozharness-archive/);
  });

  it('each command module registers the commands its entry names, in order', async () => {
    for (const m of commandModules) {
      const program = new Command();
      (await m.load())(program);
      assert.deepEqual(names(program), m.commands);
    }
  });

  it('registers only the module of the command run, and every module otherwise', async () => {
    const all = commandModules.flatMap((m) => m.commands);
    assert.deepEqual(names(await buildProgram()), all);
    for (const first of ['--help', 'help', 'biuld', undefined]) {
      const argv = ['node', 'mozharness-archive', ...(first ? [first] : [])];
      assert.deepEqual(names(await buildProgram(argv)), all, String(first));
    }
    const argv = (c: string) => ['node', 'mozharness-archive', c, '--help'];
    assert.deepEqual(names(await buildProgram(argv('build'))), ['build', 'digest', 'unpack']);
    assert.deepEqual(names(await buildProgram(argv('serve'))), [
      'find',
      'fetch',
      'serve',
      'promote',
      'deploy',
    ]);
  });
});
