/**
 * One Prometheus endpoint for every worker of `nodescale run --metrics`: on each scrape the supervisor asks all
 * workers at once (supervisor.workerMetrics) and renders their series side by side, each labelled `worker="<slot>"`,
 * with its own series about the workers. A worker that does not answer within the scrape timeout is left out of that
 * scrape and shows as `nodescale_supervisor_worker_up{worker} 0`: one slow worker never holds up the others, and
 * the supervisor's event loop is never blocked waiting (prom-client's AggregatorRegistry fails the whole scrape).
 */
import http from 'node:http';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import { listen } from '../listen.ts';
import type { Supervisor, WorkerMetricObject } from './supervisor.ts';

export interface MetricsAddress {
  host: string;
  port: number;
}

/** The text of one scrape. */
export async function scrapeWorkers(
  supervisor: Supervisor,
  timeoutMs: number,
): Promise<{ text: string; contentType: string }> {
  const started = performance.now();
  const answers = await supervisor.workerMetrics(timeoutMs);
  const own = new Registry();
  const up = new Gauge({
    name: 'nodescale_supervisor_worker_up',
    help: 'Whether the worker answered this scrape in time (1) or not (0: no runtime, slow or stuck).',
    labelNames: ['worker'],
    registers: [own],
  });
  const restarts = new Gauge({
    name: 'nodescale_supervisor_worker_restarts',
    help: 'Crash restarts of the worker slot since the supervisor started.',
    labelNames: ['worker'],
    registers: [own],
  });
  const workers = new Gauge({
    name: 'nodescale_supervisor_workers',
    help: 'Workers by state.',
    labelNames: ['state'],
    registers: [own],
  });
  const failedSlots = new Gauge({
    name: 'nodescale_supervisor_slots_failed',
    help: 'Worker slots given up on (a crash loop): no worker runs there until the next reload or restart.',
    registers: [own],
  });
  failedSlots.set(supervisor.failedSlots().length);
  const reloadFailed = new Gauge({
    name: 'nodescale_supervisor_reload_failed',
    help: 'Whether the last reload failed (1: rolled back, or failed its probation) or not (0, or none yet).',
    registers: [own],
  });
  const last = supervisor.lastReload?.state;
  reloadFailed.set(last === 'rolled-back' || last === 'failed-probation' ? 1 : 0);
  const duration = new Gauge({
    name: 'nodescale_supervisor_scrape_duration_seconds',
    help: "How long collecting the workers' metrics took.",
    registers: [own],
  });
  for (const answer of answers) up.set({ worker: String(answer.slot) }, answer.metrics === null ? 0 : 1);
  const byState = new Map<string, number>();
  for (const w of supervisor.status()) {
    restarts.set({ worker: String(w.slot) }, w.restarts);
    byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
  }
  for (const [state, count] of byState) workers.set({ state }, count);
  duration.set((performance.now() - started) / 1000);
  // Each worker's series gets its worker label; 'sum' then keeps them apart (their label sets differ).
  const labelled = answers
    .filter((a): a is typeof a & { metrics: WorkerMetricObject[] } => a.metrics !== null)
    .map(({ slot, metrics }) =>
      metrics.map((metric) => ({
        ...metric,
        aggregator: 'sum' as const,
        values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, worker: String(slot) } })),
      })),
    );
  const merged = AggregatorRegistry.aggregate([...labelled, await own.getMetricsAsJSON()]);
  return { text: await merged.metrics(), contentType: merged.contentType };
}

/** Serves GET /metrics (anything else: 404). Listens on loopback unless told otherwise. */
export async function startMetricsServer(
  address: MetricsAddress,
  supervisor: Supervisor,
  timeoutMs: number,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    scrapeWorkers(supervisor, timeoutMs).then(
      ({ text, contentType }) =>
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text),
      (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  });
  await listen(server, address.port, address.host, '--metrics');
  server.unref();
  return server;
}
