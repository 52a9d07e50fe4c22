// Ctrl-C during `local run` shuts everything down and leaves no stray process behind: no
// `hg serve`, no task command, no embedded server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCli } from './helpers/cli.js';
import { noProcessLeft, processesMentioning } from './helpers/forest.js';
import { giveUp, waitFor } from './helpers/wait.js';

describe('local run: Ctrl-C', function () {
  this.timeout(180_000);

  it('stops cleanly mid-run, exits 130 and leaves no stray processes', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-interrupt-'));
    const stateDir = path.join(tmp, 'state');
    try {
      const cli = startCli(['local', 'run', '--repo-type', 'hg', '--state-dir', stateDir]);
      const { child, exited } = cli;
      // wait until the run is under way: hg serve is serving the sample hg repository
      await waitFor(
        'local run to start hg serve',
        () => {
          if (child.exitCode !== null) giveUp(`local run exited early: ${cli.stderr}`);
          return processesMentioning(path.join(stateDir, 'sample-repo')).some((p) =>
            p.includes('serve'),
          );
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const code = await exited;
      assert.equal(code, 130, cli.stderr);
      assert.match(cli.stderr, /interrupted/);
      // the run's children may take a moment to go once it exited: none may stay
      await noProcessLeft(stateDir);
      // the state directory is consistent: the services start again on it
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `const m = await import('./src/local/embedded.ts'); const e = await m.startEmbedded({ stateDir: ${JSON.stringify(stateDir)}, sweepIntervalMs: 0 }); await e.close();`,
        ],
        { cwd: path.resolve('.'), stdio: 'pipe' },
      );
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
