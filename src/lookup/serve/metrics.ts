// The lookup service's Prometheus metrics, in a registry of its own (several services in one
// process, as in tests, never share counters). Served on an optional port by `serve --metrics-port`.
import { Counter, Histogram, Registry } from 'prom-client';
import { serveMetrics } from '../../util/metrics.js';

export class LookupMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'mozharness_lookup_requests_total',
    help: 'Requests answered, by route kind, cache outcome and HTTP status.',
    labelNames: ['route', 'outcome', 'status'] as const,
    registers: [this.registry],
  });
  readonly builds = new Counter({
    name: 'mozharness_lookup_on_demand_builds_total',
    help: 'On-demand archive tasks this replica created, by project.',
    labelNames: ['project'] as const,
    registers: [this.registry],
  });
  readonly repositoryLookups = new Counter({
    name: 'mozharness_lookup_repository_lookups_total',
    help: 'Revisions looked up in a repository because they were not indexed, by project.',
    labelNames: ['project'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'mozharness_lookup_request_seconds',
    help: 'Time from request to answer, by route kind.',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  /** Serve /metrics on host:port (0 = any free port); returns the URL and a close function. */
  listen(port: number, host = '127.0.0.1'): Promise<{ url: string; close: () => Promise<void> }> {
    return serveMetrics(this.registry, port, host);
  }
}
