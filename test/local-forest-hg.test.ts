// `local up --repo` on a Mercurial repository: `hg serve` on loopback accepts a developer's
// `hg push`, the changegroup hook records it in the push log, the forest renders the hg-push
// producer's decision task, and every task of the push runs to completion.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ARCHIVE_LABEL } from '../src/contract/index.js';
import type { Forest } from '../src/local/forest.js';
import { queueClient } from '../src/taskcluster/client.js';
import { pushOf, settled, startSampleForest } from './helpers/forest.js';
import { HG_ENV } from './helpers/repos.js';

const run = promisify(execFile);
const hg = (cwd: string, ...args: string[]) => run('hg', args, { cwd, env: HG_ENV });

describe('local up --repo (the local forest, hg)', function () {
  this.timeout(600_000);
  let tmp: string;
  let forest: Forest;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-forest-hg-'));
    forest = await startSampleForest(tmp, 'hg');
  });
  after(async () => {
    await forest?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs every task of an hg push to its loopback URL', async () => {
    assert.match(forest.repository!.url, /^http:\/\/127\.0\.0\.1:\d+/);
    const dev = path.join(tmp, 'dev');
    await run('hg', ['clone', '-q', forest.repository!.url, dev], { env: HG_ENV });
    const file = path.join(dev, 'testing/mozharness/configs/unittests/linux_unittest.py');
    fs.writeFileSync(file, 'config = {"suites": ["xpcshell"]}\n');
    await hg(dev, 'commit', '-q', '-m', 'Bug 20 - Run only xpcshell on Linux (harness change)');
    await hg(dev, 'push', '-q');
    const { stdout } = await hg(dev, 'log', '-r', '.', '-T', '{node}');
    const push = await pushOf(forest.pushLog, stdout.trim());
    assert.match(push.message, /^Bug 20/);
    const queue = queueClient({
      rootUrl: forest.embedded.rootUrl,
      credentials: forest.embedded.credentials,
    });
    assert.equal(push.producer, 'hg-push');
    const tasks = await settled(queue, push.decisionTaskId);
    for (const t of tasks) assert.equal(t.status.state, 'completed', t.task.metadata.name);
    assert.ok(
      tasks.some((t) => t.task.metadata.name === ARCHIVE_LABEL),
      'the archive task ran',
    );
  });
});
