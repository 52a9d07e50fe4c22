// Three replicas of the lookup service (`serve`), each with its own state directory, behind one
// imagined load balancer, asked at once for a revision that is not indexed: the queue's
// idempotent createTask of the id every replica derives is the lock between them, so exactly one
// on-demand archive task exists, and a worker completing it makes every replica answer a 302.
// Runs against the embedded and the real services.
import assert from 'node:assert/strict';
import path from 'node:path';
import { revisionNamespace } from '../../src/contract/index.js';
import { checkLookupConfig } from '../../src/lookup/config.js';
import { createLookupService, onDemandTaskId, type LookupService } from '../../src/lookup/serve.js';
import { indexClient, queueClient } from '../../src/taskcluster/client.js';
import { waitFor } from '../helpers/wait.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';

const PROJECT = 'mozilla-central';

describe(`integration: three serve replicas (${process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded'} services)`, function () {
  this.timeout(240_000);
  let env: IntegrationEnv;
  const replicas: LookupService[] = [];

  before(async () => {
    env = await startIntegrationEnv({ variants: [undefined] });
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await env?.close();
  });

  it('create one on-demand task for a revision asked of all three at once, then all answer 302', async () => {
    const name = 'replicas';
    const taskQueueId = env.taskQueueId(name);
    const revision = env.repo.revisions[0]!;
    // what a deployment grants the lookup service: create archive tasks on its queue, indexed
    // under its prefix (reads are anonymous)
    const credentials = await env.backend.clientWithScopes(
      [
        `queue:create-task:low:${taskQueueId}`,
        'queue:scheduler-id:-',
        'queue:create-task:project:none',
        `queue:route:index.${env.namespace}.*`,
      ],
      'lookup',
    );
    const config = checkLookupConfig({
      indexPrefix: env.namespace,
      allowHosts: [env.s3.endpoint],
      projects: {
        [PROJECT]: {
          repository: env.hg.url,
          legacyPath: 'mozilla-central',
          onDemand: { taskQueueId },
        },
      },
    });
    const urls: string[] = [];
    for (let i = 0; i < 3; i++) {
      const write = queueClient({ rootUrl: env.backend.rootUrl, credentials });
      const service = createLookupService(config, {
        index: indexClient({ rootUrl: env.backend.rootUrl }),
        queue: queueClient({ rootUrl: env.backend.rootUrl }),
        createQueue: write,
        rootUrl: env.backend.rootUrl,
        stateDir: path.join(env.dir, `lookup-${i}`),
        log: env.log.child({ replica: i }),
      });
      replicas.push(service);
      urls.push(await service.listen(0));
    }
    const ask = (i: number) =>
      fetch(`${urls[i % 3]}/v1/${PROJECT}/revision/${revision}`, { redirect: 'manual' });
    const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => ask(i)));
    const bodies = await Promise.all(answers.map((r) => r.text()));
    assert.deepEqual(
      answers.map((r) => r.status),
      Array(9).fill(202),
      bodies.join('\n'),
    );
    const expected = onDemandTaskId(PROJECT, config.projects[PROJECT]!, revision);
    assert.deepEqual([...new Set(answers.map((r) => r.headers.get('x-task-id')))], [expected]);
    const created = await Promise.all(
      replicas.map(async (r) =>
        (await r.metrics.builds.get()).values.reduce((n, v) => n + v.value, 0),
      ),
    );
    assert.equal(
      created.reduce((n, c) => n + c, 0),
      1,
      `exactly one replica created the task, the others joined it: ${created.join(', ')}`,
    );
    const task = await env.queue.task(expected);
    assert.equal(task.payload.revision, revision);
    assert.equal(task.taskQueueId, taskQueueId);

    // a worker builds it; every replica then redirects to the same archive
    const summary = await env.runOnce(name);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    await waitFor('the on-demand task to be completed', async () => {
      const r = await fetch(`${urls[0]}/v1/status/${expected}`);
      return ((await r.json()) as { state: string }).state === 'completed' ? true : undefined;
    });
    const ns = revisionNamespace(env.namespace, PROJECT, revision);
    await env.waitIndexed(ns, expected);
    for (const r of replicas) r.clearCache();
    const after = await Promise.all([0, 1, 2].map((i) => ask(i)));
    assert.deepEqual(
      after.map((r) => r.status),
      [302, 302, 302],
    );
    assert.equal(new Set(after.map((r) => r.headers.get('location'))).size, 1);
    assert.deepEqual(
      after.map((r) => r.headers.get('x-task-id')),
      [expected, expected, expected],
    );
  });
});
