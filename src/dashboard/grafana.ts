/**
 * For those who have Prometheus and Grafana: a Grafana dashboard of the metrics nodescale exports (the runtime's,
 * each series of `nodescale run --metrics` labelled by `worker`, and the supervisor's), and Prometheus alert rules
 * for what matters. Both are data first (`grafanaDashboard()`, `alertRules()`); `nodescale grafana` prints them.
 *
 * The same two rules as the dashboard: latency percentiles from the histograms summed across workers
 * (`histogram_quantile` over `sum by (le)`), and the worst worker's event loop (`max`), never a mean.
 * `METRICS_QUERIED` lists every metric the queries read: a test checks each is one nodescale exports.
 */

/** A PromQL query of the dashboard or the rules, and the metrics it reads. */
interface Query {
  expr: string;
  legend: string;
}

const WORKERS = 'job=~"$job", instance=~"$instance"';

const PANELS: { title: string; unit: string; queries: Query[]; description: string }[] = [
  {
    title: 'Event-loop delay p99 (worst worker, and each)',
    unit: 's',
    description: 'The talk’s first rule: keep an eye on the event loop. The worst worker, not the mean.',
    queries: [
      { expr: `max by (instance) (nodescale_eventloop_delay_p99_seconds{${WORKERS}})`, legend: 'worst {{instance}}' },
      { expr: `nodescale_eventloop_delay_p99_seconds{${WORKERS}}`, legend: '{{instance}} w{{worker}}' },
    ],
  },
  {
    title: 'Requests/s',
    unit: 'reqps',
    description: 'Completed requests per second, all workers and each.',
    queries: [
      {
        expr: `sum by (instance) (rate(nodescale_http_request_duration_seconds_count{${WORKERS}}[1m]))`,
        legend: 'all {{instance}}',
      },
      { expr: `nodescale_http_requests_per_second{${WORKERS}}`, legend: '{{instance}} w{{worker}}' },
    ],
  },
  {
    title: 'HTTP latency p50 / p99 (merged histograms)',
    unit: 's',
    description: 'Percentiles of the histograms summed over workers and routes, never a mean of percentiles.',
    queries: [0.5, 0.99].map((q) => ({
      expr: `histogram_quantile(${q}, sum by (instance, le) (rate(nodescale_http_request_duration_seconds_bucket{${WORKERS}}[1m])))`,
      legend: `p${q * 100} {{instance}}`,
    })),
  },
  {
    title: 'Event-loop utilisation',
    unit: 'percentunit',
    description: 'Share of time the loop was busy, per worker.',
    queries: [{ expr: `nodescale_eventloop_utilization_ratio{${WORKERS}}`, legend: '{{instance}} w{{worker}}' }],
  },
  {
    title: 'CPU, % of one core',
    unit: 'percent',
    description: 'Per worker.',
    queries: [{ expr: `nodescale_cpu_percent{${WORKERS}}`, legend: '{{instance}} w{{worker}}' }],
  },
  {
    title: 'Memory',
    unit: 'bytes',
    description: 'RSS and heap used, per worker.',
    queries: [
      { expr: `process_resident_memory_bytes{${WORKERS}}`, legend: 'rss {{instance}} w{{worker}}' },
      { expr: `nodejs_heap_size_used_bytes{${WORKERS}}`, legend: 'heap {{instance}} w{{worker}}' },
    ],
  },
  {
    title: 'GC pause per sampling interval',
    unit: 's',
    description: 'Time paused in garbage collection, per worker.',
    queries: [{ expr: `nodescale_gc_pause_seconds{${WORKERS}}`, legend: '{{instance}} w{{worker}}' }],
  },
  {
    title: 'Shed (503) per second, by reason',
    unit: 'reqps',
    description: 'Requests refused to keep the event loop responsive.',
    queries: [
      {
        expr: `sum by (instance, reason) (rate(nodescale_http_shed_total{${WORKERS}}[1m]))`,
        legend: '{{instance}} {{reason}}',
      },
    ],
  },
  {
    title: 'Workers: restarts, answering, failed slots',
    unit: 'short',
    description: 'Crash restarts per slot, whether each answered the scrape, slots given up on.',
    queries: [
      { expr: `nodescale_supervisor_worker_restarts{${WORKERS}}`, legend: 'restarts {{instance}} w{{worker}}' },
      { expr: `nodescale_supervisor_worker_up{${WORKERS}}`, legend: 'up {{instance}} w{{worker}}' },
      { expr: `nodescale_supervisor_slots_failed{${WORKERS}}`, legend: 'failed slots {{instance}}' },
    ],
  },
];

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'page' | 'ticket' };
  annotations: { summary: string; description: string };
}

export const ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'NodescaleEventLoopDelayHigh',
    expr: 'max by (job, instance) (nodescale_eventloop_delay_p99_seconds) > 0.1',
    for: '2m',
    labels: { severity: 'page' },
    annotations: {
      summary: 'The worst worker’s event-loop delay p99 is over 100 ms',
      description:
        '{{ $labels.instance }}: {{ $value | humanizeDuration }}: a blocked or saturated loop delays every request.',
    },
  },
  {
    alert: 'NodescaleEventLoopSaturated',
    expr: 'max by (job, instance) (nodescale_eventloop_utilization_ratio) > 0.9',
    for: '5m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'A worker’s event loop is busy over 90% of the time',
      description: '{{ $labels.instance }}: add workers or hosts, or move CPU-bound work off the loop.',
    },
  },
  {
    alert: 'NodescaleShedding',
    expr: 'sum by (job, instance) (rate(nodescale_http_shed_total[5m])) > 0',
    for: '2m',
    labels: { severity: 'page' },
    annotations: {
      summary: 'Requests are being shed (503) to protect the event loop',
      description: '{{ $labels.instance }}: {{ $value | humanize }}/s refused: the service is over its capacity.',
    },
  },
  {
    alert: 'NodescaleRestarts',
    expr: 'max by (job, instance) (delta(nodescale_supervisor_worker_restarts[15m])) > 2',
    for: '0m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'A worker slot restarted more than twice in 15 minutes',
      description: '{{ $labels.instance }}: its crashes are in the supervisor’s log (and crash bundles).',
    },
  },
  {
    alert: 'NodescaleCrashLoop',
    expr: 'max by (job, instance) (nodescale_supervisor_slots_failed) > 0',
    for: '0m',
    labels: { severity: 'page' },
    annotations: {
      summary: 'A worker slot was given up on (crash loop)',
      description: '{{ $labels.instance }}: {{ $value }} slot(s) run no worker: nodescale status says why.',
    },
  },
  {
    alert: 'NodescaleLeakSuspected',
    expr: 'max by (job, instance, worker) (nodescale_leak_suspected) == 1',
    for: '0m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'The leak detector fired: the post-GC heap keeps growing',
      description: '{{ $labels.instance }} worker {{ $labels.worker }}: its heap snapshot is in the leak directory.',
    },
  },
  {
    alert: 'NodescaleReloadFailed',
    expr: 'max by (job, instance) (nodescale_supervisor_reload_failed) == 1',
    for: '0m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'The last reload failed: rolled back, or failed its probation',
      description: '{{ $labels.instance }}: the new version did not hold; nodescale status says why.',
    },
  },
  {
    alert: 'NodescaleWorkerNotAnswering',
    expr: 'min by (job, instance, worker) (nodescale_supervisor_worker_up) == 0',
    for: '2m',
    labels: { severity: 'ticket' },
    annotations: {
      summary: 'A worker did not answer the metrics scrape in time',
      description: '{{ $labels.instance }} worker {{ $labels.worker }}: stuck, or not running nodescale/runtime.',
    },
  },
];

/** Every metric name a query of the dashboard or the rules reads. */
export function metricsQueried(): string[] {
  const exprs = [
    ...PANELS.flatMap((panel) => panel.queries.map((query) => query.expr)),
    ...ALERT_RULES.map((r) => r.expr),
  ];
  const names = new Set<string>();
  for (const expr of exprs)
    for (const [name] of expr.matchAll(/\b(?:nodescale|process|nodejs)_[a-z_]+\b/g)) names.add(name);
  return [...names].sort();
}

/** The Grafana dashboard (importable as is: Dashboards → New → Import; it asks for the Prometheus data source). */
export function grafanaDashboard() {
  return {
    __inputs: [
      {
        name: 'DS_PROMETHEUS',
        label: 'Prometheus',
        type: 'datasource',
        pluginId: 'prometheus',
        pluginName: 'Prometheus',
      },
    ],
    title: 'nodescale',
    uid: 'nodescale',
    description:
      'The workers of nodescale run --metrics: event loop, requests, latency, CPU, memory, GC, shedding, restarts.',
    tags: ['nodescale', 'nodejs'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '10s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: ['job', 'instance'].map((label) => ({
        name: label,
        type: 'query',
        datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
        query: { query: `label_values(nodescale_supervisor_workers, ${label})`, refId: label },
        definition: `label_values(nodescale_supervisor_workers, ${label})`,
        includeAll: true,
        multi: true,
        current: { text: 'All', value: '$__all' },
        refresh: 2,
      })),
    },
    panels: PANELS.map((panel, i) => ({
      id: i + 1,
      type: 'timeseries',
      title: panel.title,
      description: panel.description,
      datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
      gridPos: { x: (i % 2) * 12, y: Math.floor(i / 2) * 8, w: 12, h: 8 },
      fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
      options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
      targets: panel.queries.map((query, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
        expr: query.expr,
        legendFormat: query.legend,
      })),
    })),
  };
}

/** The alert rules as a Prometheus rule file (YAML, every string single-quoted: nothing in them is read as YAML). */
export function alertRulesFile(): string {
  const quote = (text: string) => `'${text.replaceAll("'", "''")}'`;
  const lines = ['# nodescale grafana --alerts: Prometheus alert rules for nodescale run --metrics', 'groups:'];
  lines.push('  - name: nodescale', '    rules:');
  for (const rule of ALERT_RULES) {
    lines.push(
      `      - alert: ${rule.alert}`,
      `        expr: ${quote(rule.expr)}`,
      `        for: ${rule.for}`,
      '        labels:',
      `          severity: ${rule.labels.severity}`,
      '        annotations:',
      `          summary: ${quote(rule.annotations.summary)}`,
      `          description: ${quote(rule.annotations.description)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
