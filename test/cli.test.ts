import assert from 'node:assert/strict';
import { buildProgram } from '../src/cli/main.js';

describe('cli', () => {
  it('builds the program with its name and help', () => {
    const program = buildProgram();
    assert.equal(program.name(), 'mozharness-archive');
    assert.match(program.helpInformation(), /mozharness-archive/);
  });
});
