// The archive worker against a Taskcluster deployment: the embedded services (npm test) and the
// real Taskcluster services (npm run test:real), same assertions. The archive store is a real
// s3rver, the repository a real `hg serve`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildArchive } from '../../src/archive/index.js';
import { SAMPLE_SUBDIR } from '../helpers/repos.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe(`integration: the archive worker (${process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded'} services)`, function () {
  this.timeout(180_000);
  let env: IntegrationEnv;
  let expected: { sha256: string; size: number; treeDigest: string }[];

  before(async () => {
    env = await startIntegrationEnv();
    expected = [];
    for (const revision of env.repo.revisions) {
      expected.push(
        await buildArchive({
          source: { kind: 'hg', path: env.repo.path },
          revision,
          subdir: SAMPLE_SUBDIR,
        }),
      );
    }
  });
  after(async () => {
    await env?.close();
  });

  it('good: completes, the artifact is the archive built locally, routes are indexed', async () => {
    const q = 'good';
    const ns = `${env.namespace}.${q}`;
    const taskId = await env.createTask(
      q,
      {
        repository: env.hg.url,
        revision: env.repo.revisions[0],
        treeDigest: expected[0]!.treeDigest,
      },
      { routes: [`index.${ns}.latest`] },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    assert.equal((await env.queue.status(taskId)).status.state, 'completed');
    const bytes = await env.follow(taskId, 'public/build/mozharness.tar.gz');
    assert.equal(sha256(bytes), expected[0]!.sha256);
    await env.waitIndexed(`${ns}.latest`, taskId);
  });
});
