/**
 * The Prometheus registry of a protected process: prom-client's default metrics (process_*, nodejs_*: the names
 * dashboards already know), and nodescale's own, under nodescale_: per-interval event-loop figures, CPU, shedding,
 * in-flight requests, readiness, leak suspicion, and the HTTP latency histogram.
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import { HttpHistogram } from './http-histogram.ts';
import type { RuntimeSample } from './sampler.ts';

export interface MetricsSource {
  latest(): RuntimeSample | undefined;
  inFlight(): number;
  ready(): boolean;
  overloaded(): boolean;
  leakSuspected(): boolean;
}

export interface RuntimeMetrics {
  registry: Registry;
  http: HttpHistogram;
  shed: Counter<'reason'>;
  /** Stalls the watchdog saw (stall capture on), captured or not (rate limit). */
  stalls: Counter<'captured'>;
  /** What /metrics (and the supervisor's scrape) serves: `registry`, then the app's registries. */
  served: ServedMetrics;
}

/**
 * The runtime's registry, followed by the metrics of the app's own registries (prom-client's default registry, where
 * its users register their counters, unless the `registries` option says otherwise). A name the runtime's registry
 * already has is served once, from the runtime's: an app that also calls collectDefaultMetrics() gets no duplicates.
 */
export class ServedMetrics {
  readonly #own: Registry;
  readonly #also: readonly Registry[];

  constructor(own: Registry, also: readonly Registry[]) {
    this.#own = own;
    this.#also = also.filter((registry) => registry !== own);
  }

  get contentType(): string {
    return this.#own.contentType;
  }

  #extraNames(registry: Registry, taken: Set<string>): string[] {
    const names: string[] = [];
    for (const metric of registry.getMetricsAsArray()) {
      const name = (metric as { name: string }).name;
      if (!taken.has(name)) names.push(name);
      taken.add(name);
    }
    return names;
  }

  #ownNames(): Set<string> {
    return new Set(this.#own.getMetricsAsArray().map((metric) => (metric as { name: string }).name));
  }

  async text(): Promise<string> {
    let text = await this.#own.metrics();
    const taken = this.#ownNames();
    for (const registry of this.#also) {
      for (const name of this.#extraNames(registry, taken)) text += `${await registry.getSingleMetricAsString(name)}\n`;
    }
    return text;
  }

  async json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    const metrics = await this.#own.getMetricsAsJSON();
    const taken = this.#ownNames();
    for (const registry of this.#also) {
      const names = new Set(this.#extraNames(registry, taken));
      if (names.size > 0)
        metrics.push(...(await registry.getMetricsAsJSON()).filter((metric) => names.has(metric.name)));
    }
    return metrics;
  }
}

function gauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | undefined,
  labelNames: string[] = [],
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const value = read();
      if (value !== undefined) this.set(value);
    },
  });
}

export function createRuntimeMetrics(
  source: MetricsSource,
  options: { defaultMetrics: boolean; latencyBuckets: number[]; registries: readonly Registry[] },
): RuntimeMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const s = () => source.latest();
  gauge(
    registry,
    'nodescale_eventloop_delay_p50_seconds',
    'Event-loop delay p50 over the last sampling interval.',
    () => s() && s()!.eventLoop.delayP50Ms / 1000,
  );
  gauge(
    registry,
    'nodescale_eventloop_delay_p99_seconds',
    'Event-loop delay p99 over the last sampling interval.',
    () => s() && s()!.eventLoop.delayP99Ms / 1000,
  );
  gauge(
    registry,
    'nodescale_eventloop_delay_max_seconds',
    'Event-loop delay max over the last sampling interval.',
    () => s() && s()!.eventLoop.delayMaxMs / 1000,
  );
  gauge(
    registry,
    'nodescale_eventloop_utilization_ratio',
    'Event-loop utilisation over the last sampling interval (0..1).',
    () => s()?.eventLoop.utilization,
  );
  gauge(
    registry,
    'nodescale_cpu_percent',
    'CPU of the process over the last sampling interval, % of one core.',
    () => s()?.cpu.percent,
  );
  gauge(
    registry,
    'nodescale_gc_pause_seconds',
    'Time paused in GC over the last sampling interval.',
    () => s() && s()!.gc.pauseMs / 1000,
  );
  gauge(
    registry,
    'nodescale_http_requests_per_second',
    'Requests completed per second over the last sampling interval.',
    () => s()?.http.requestsPerSecond,
  );
  gauge(registry, 'nodescale_http_requests_in_flight', 'Requests being served now.', () => source.inFlight());
  gauge(registry, 'nodescale_ready', '1 when the process is ready for traffic (see /readyz).', () =>
    source.ready() ? 1 : 0,
  );
  gauge(registry, 'nodescale_overloaded', '1 while the process sheds load.', () => (source.overloaded() ? 1 : 0));
  gauge(registry, 'nodescale_leak_suspected', '1 once the leak detector fired.', () =>
    source.leakSuspected() ? 1 : 0,
  );
  const shed = new Counter({
    name: 'nodescale_http_shed_total',
    help: 'Requests refused with 503 to protect the event loop, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const stalls = new Counter({
    name: 'nodescale_event_loop_stalls_total',
    help: 'Times the event loop was held past stall.thresholdMs (stall capture on); captured="false" when rate-limited.',
    labelNames: ['captured'],
    registers: [registry],
  });
  const http = new HttpHistogram('nodescale_http_request_duration_seconds', options.latencyBuckets);
  registry.registerMetric(http as never);
  return { registry, http, shed, stalls, served: new ServedMetrics(registry, options.registries) };
}
