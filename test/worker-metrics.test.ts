// The worker's Prometheus metrics: claims, resolutions by state, claim-to-resolved seconds and
// uploaded bytes, scraped over HTTP from the metrics port.
import assert from 'node:assert/strict';
import { startWorkerEnv, type WorkerEnv } from './helpers/worker-env.js';
import { WorkerMetrics } from '../src/worker/index.js';

describe('worker: Prometheus metrics', function () {
  this.timeout(120_000);
  let env: WorkerEnv;

  before(async () => {
    env = await startWorkerEnv({ variants: [undefined] });
  });
  after(async () => {
    await env?.close();
  });

  it('counts claimed and resolved runs, their duration and the fetched and uploaded bytes; /metrics serves them', async () => {
    const q = 'metrics';
    const metrics = new WorkerMetrics();
    const server = await metrics.listen(0);
    try {
      await env.createTask(q, { repository: env.hg.url, revision: env.repo.revisions[0] });
      const done = await env.runOnce(q, {}, { metrics });
      assert.equal(done.completed, 1, JSON.stringify(done.results));
      await env.createTask(q, { repository: env.hg.url, revision: 'abc' });
      const bad = await env.runOnce(q, {}, { metrics });
      assert.equal(bad.exception, 1);

      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      const value = (line: RegExp) =>
        Number(new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text)?.[1]);
      assert.equal(value(/mozharness_worker_tasks_claimed_total/), 2, text);
      assert.equal(
        value(/mozharness_worker_tasks_resolved_total\{state="completed",reason=""\}/),
        1,
        text,
      );
      assert.equal(
        value(
          /mozharness_worker_tasks_resolved_total\{state="exception",reason="malformed-payload"\}/,
        ),
        1,
        text,
      );
      assert.equal(
        value(/mozharness_worker_claim_to_resolved_seconds_count\{state="completed"\}/),
        1,
      );
      const a = done.results[0]!.archive!;
      assert.equal(value(/mozharness_worker_uploaded_bytes_total/), a.size + a.zip!.size, text);
      // the hgweb source's subdir archive, as transferred
      const fetched = done.results[0]!.fetchedBytes!;
      assert.ok(fetched > 0, 'the hgweb download was counted');
      assert.equal(value(/mozharness_worker_fetched_bytes_total/), fetched, text);
      assert.equal((await fetch(server.url.replace('/metrics', '/other'))).status, 404);
    } finally {
      await server.close();
    }
  });

  it('metricsPort serves them while the worker runs', async () => {
    const q = 'metrics-port';
    await env.createTask(q, { repository: env.hg.url, revision: env.repo.revisions[0] });
    let scraped = '';
    const summary = await env.runOnce(
      q,
      { metricsPort: 0 },
      {
        onTaskResolved: () => {
          const line = env.logLines.find((l) => l.includes('"event":"metrics"'));
          scraped = line ? JSON.parse(line).url : '';
        },
      },
    );
    assert.equal(summary.completed, 1);
    assert.match(scraped, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  });
});
