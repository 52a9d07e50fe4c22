// The lookup service's Prometheus metrics, in a registry of its own (several services in one
// process, as in tests, never share counters). Served on an optional port by `serve --metrics-port`.
//
// Answers are counted on tallies: one per (route, outcome, status) and one per route for the
// latency, each kept by whoever answers (a cached hit keeps its tallies with its answer), so
// counting a request is a few additions, with no label hashing. The counter takes its tallies when
// it is read; the latency histogram is the tallies themselves.
import { Counter, Registry, type Metric } from 'prom-client';
import { serveMetrics } from '../../util/metrics.js';

/** The answers of one (route, outcome, status) not yet added to the requests counter. */
export interface RequestTally {
  readonly labels: { route: string; outcome: string; status: string };
  pending: number;
}

/** The latency of one route's answers: a count per bucket (not cumulative), their sum, count. */
export interface LatencyTally {
  readonly route: string;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** A Prometheus histogram by route, in the shape prom-client's registry reads. */
class LatencyHistogram {
  readonly name = 'mozharness_lookup_request_seconds';
  readonly help = 'Time from request to answer, by route kind.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private byRoute = new Map<string, LatencyTally>();

  tally(route: string): LatencyTally {
    let t = this.byRoute.get(route);
    if (!t) {
      t = { route, counts: new Float64Array(LATENCY_BUCKETS.length + 1), sum: 0, count: 0 };
      this.byRoute.set(route, t);
    }
    return t;
  }

  observe(t: LatencyTally, seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    t.counts[i]!++;
    t.sum += seconds;
    t.count++;
  }

  async get() {
    const name = this.name;
    const values: Array<{
      metricName: string;
      labels: Record<string, string | number>;
      value: number;
    }> = [];
    for (const t of this.byRoute.values()) {
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += t.counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { le, route: t.route }, value: acc });
      });
      values.push({
        metricName: `${name}_bucket`,
        labels: { le: '+Inf', route: t.route },
        value: t.count,
      });
      values.push({ metricName: `${name}_sum`, labels: { route: t.route }, value: t.sum });
      values.push({ metricName: `${name}_count`, labels: { route: t.route }, value: t.count });
    }
    return { name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.byRoute.clear();
  }
}

export class LookupMetrics {
  readonly registry = new Registry();
  private tallies = new Map<string, RequestTally>();
  readonly requests = new Counter({
    name: 'mozharness_lookup_requests_total',
    help: 'Requests answered, by route kind, cache outcome and HTTP status.',
    labelNames: ['route', 'outcome', 'status'] as const,
    registers: [this.registry],
    collect: () => this.flushRequests(),
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
  readonly latency = new LatencyHistogram();

  constructor() {
    // the registry reads any object with prom-client's metric shape (name, help, type, get)
    this.registry.registerMetric(this.latency as unknown as Metric);
  }

  /** The tally of answers of (route, outcome, status): the same object every time. */
  requestTally(route: string, outcome: string, status: number): RequestTally {
    const key = `${route} ${outcome} ${status}`;
    let t = this.tallies.get(key);
    if (!t) {
      t = { labels: { route, outcome, status: String(status) }, pending: 0 };
      this.tallies.set(key, t);
    }
    return t;
  }

  /** Count one answer, `seconds` after its request arrived. */
  answered(request: RequestTally, latency: LatencyTally, seconds: number): void {
    request.pending++;
    this.latency.observe(latency, seconds);
  }

  private flushRequests(): void {
    for (const t of this.tallies.values()) {
      if (t.pending === 0) continue;
      this.requests.inc(t.labels, t.pending);
      t.pending = 0;
    }
  }

  /** Serve /metrics on host:port (0 = any free port); returns the URL and a close function. */
  listen(port: number, host = '127.0.0.1'): Promise<{ url: string; close: () => Promise<void> }> {
    return serveMetrics(this.registry, port, host);
  }
}
