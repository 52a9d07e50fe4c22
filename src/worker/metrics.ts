// The worker's Prometheus metrics, in a registry of its own, served on an optional port
// (`metricsPort`): tasks claimed, tasks resolved by state and reason, seconds from claim to
// resolution, and the bytes fetched from repositories and uploaded to S3.
import { Counter, Histogram, Registry } from 'prom-client';
import { serveMetrics } from '../util/metrics.js';
import type { TaskResult } from './run-task.js';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly claimed = new Counter({
    name: 'mozharness_worker_tasks_claimed_total',
    help: 'Task runs claimed from the queue.',
    registers: [this.registry],
  });
  readonly resolved = new Counter({
    name: 'mozharness_worker_tasks_resolved_total',
    help: 'Task runs finished, by resolution (completed, failed, exception, abandoned) and reason.',
    labelNames: ['state', 'reason'] as const,
    registers: [this.registry],
  });
  readonly claimToResolved = new Histogram({
    name: 'mozharness_worker_claim_to_resolved_seconds',
    help: 'Seconds from a claim to the resolution of its run, by resolution.',
    labelNames: ['state'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });
  readonly fetchedBytes = new Counter({
    name: 'mozharness_worker_fetched_bytes_total',
    help: 'Bytes the archive sources transferred from repositories (subdir archives, git packs).',
    registers: [this.registry],
  });
  readonly uploadedBytes = new Counter({
    name: 'mozharness_worker_uploaded_bytes_total',
    help: 'Archive bytes (tar.gz and zip) uploaded to S3; reused objects count nothing.',
    registers: [this.registry],
  });

  /** Record one finished run. */
  observe(r: TaskResult): void {
    const state = r.resolution.state;
    const reason = r.resolution.state === 'exception' ? r.resolution.reason : '';
    this.resolved.inc({ state, reason });
    if (r.finishedAt) {
      const seconds = (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000;
      this.claimToResolved.observe({ state }, Math.max(0, seconds));
    }
    if (r.fetchedBytes) this.fetchedBytes.inc(r.fetchedBytes);
    const a = r.archive;
    if (a && !a.reused) this.uploadedBytes.inc(a.size);
    if (a?.zip && a.zipReused === false) this.uploadedBytes.inc(a.zip.size);
  }

  listen(port: number, host = '127.0.0.1'): Promise<{ url: string; close: () => Promise<void> }> {
    return serveMetrics(this.registry, port, host);
  }
}
