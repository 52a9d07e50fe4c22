// Two worker processes on one task queue, racing on archive tasks for the same tree: whatever the
// interleaving, one tree digest ends up with one stored object and one index entry whose archive
// is that object (content addressing: the same bytes under the same key; the index entry names a
// task whose artifact is that key). Runs against the embedded and the real services.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildArchive } from '../../src/archive/index.js';
import { cacheNamespace } from '../../src/contract/index.js';
import { runWorker } from '../../src/worker/index.js';
import { waitFor } from '../helpers/wait.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { SAMPLE_SUBDIR } from '../helpers/repos.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe(`integration: two workers racing on one tree (${process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded'} services)`, function () {
  this.timeout(240_000);
  let env: IntegrationEnv;

  before(async () => {
    env = await startIntegrationEnv({ variants: [undefined] });
  });
  after(async () => {
    await env?.close();
  });

  it('one object and one index entry per tree digest, however the two workers interleave', async () => {
    const q = 'race';
    const revision = env.repo.revisions[0]!;
    const built = await buildArchive({
      source: { kind: 'hg', path: env.repo.path },
      revision,
      subdir: SAMPLE_SUBDIR,
    });
    const digestNs = cacheNamespace(env.namespace, 1, built.treeDigest);
    const tasks: string[] = [];
    for (let i = 0; i < 4; i++) {
      tasks.push(
        await env.createTask(
          q,
          { repository: env.hg.url, revision, treeDigest: built.treeDigest },
          { routes: [`index.${digestNs}`], retries: 1 },
        ),
      );
    }
    // two independent workers (own S3 clients, own queue clients), each taking tasks until all
    // four are resolved
    let resolved = 0;
    const stop = new AbortController();
    const worker = (id: string) =>
      runWorker(env.config(q, { workerId: id, capacity: 2 }), {
        ...env.deps(),
        signal: stop.signal,
        onTaskResolved: () => {
          if (++resolved >= tasks.length) stop.abort();
        },
      });
    const [a, b] = await Promise.all([worker('racer-a'), worker('racer-b')]);
    assert.equal(a.completed + b.completed, tasks.length, JSON.stringify([a.results, b.results]));

    // one stored archive object for the tree, with the bytes built locally
    const keys = (await env.s3.listKeys()).filter((k) => !k.includes('/logs/'));
    const archives = keys.filter((k) => k.endsWith('.tar.gz'));
    assert.deepEqual(archives, [`mozharness/sha256/${built.sha256}.tar.gz`], keys.join(' '));
    // every task's artifact is that object
    const locations = new Set<string>();
    for (const taskId of tasks) {
      const a = await env.artifact(taskId, 'public/build/mozharness.tar.gz');
      assert.equal(a.status, 303, a.body);
      locations.add(a.location!);
    }
    assert.equal(locations.size, 1, [...locations].join(' '));
    // one index entry for the digest, naming one of the tasks, whose archive is that object
    const indexedTask = await waitFor('the tree digest entry', () => env.indexed(digestNs));
    assert.ok(tasks.includes(indexedTask));
    const listed = await env.index.listTasks(digestNs.split('.').slice(0, -1).join('.'));
    const entries = listed.tasks.filter((t) => t.namespace === digestNs);
    assert.equal(entries.length, 1);
    const bytes = await env.follow(indexedTask, 'public/build/mozharness.tar.gz');
    assert.equal(sha256(bytes), built.sha256);
  });
});
