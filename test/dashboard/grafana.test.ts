/**
 * `nodescale grafana` and `grafana --alerts` for those who have Prometheus: every metric the dashboard and the rules
 * query is one `nodescale run --metrics` exports (read from a real scrape of two workers under load); promtool
 * accepts the rules; and a real Prometheus (Debian's) scraping the supervisor evaluates them all, and fires
 * NodescaleRestarts once a worker has been killed three times. Skipped, saying why, where Prometheus is not installed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { metricsQueried } from '../../src/dashboard/grafana.ts';
import { startPrometheus } from '../../src/servers/prometheus.ts';
import { runBin } from '../helpers/cli.ts';
import { startSupervised } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

const noPrometheus = existsSync('/usr/bin/promtool')
  ? false
  : 'prometheus is not installed (apt-get install prometheus)';

/** The fixture app under `nodescale run --metrics` on a free port: its /metrics URL and the app's. */
async function supervised(t: TestContext) {
  const run = await startSupervised(t, `graf-${process.pid}`, ['--metrics', '0']);
  await waitUntil(() => run.urls.metrics !== undefined, 'the metrics are announced', 10_000);
  return { metrics: run.urls.metrics!, app: run.app };
}

/** Families (`# TYPE name kind`) of a Prometheus text exposition. */
const families = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));

test(
  'the dashboard is JSON Grafana imports; the rules pass promtool; every metric they query is exported',
  { skip: noPrometheus },
  async (t) => {
    const dashboard = await runBin(['grafana']);
    assert.equal(dashboard.code, 0, dashboard.stderr);
    const parsed = JSON.parse(dashboard.stdout) as { panels: { targets: { expr: string }[] }[]; __inputs: unknown[] };
    assert.ok(parsed.panels.length >= 8 && parsed.__inputs.length === 1);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-rules-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const rules = await runBin(['grafana', '--alerts']);
    assert.equal(rules.code, 0, rules.stderr);
    writeFileSync(path.join(dir, 'rules.yml'), rules.stdout);
    const checked = execFileSync('promtool', ['check', 'rules', path.join(dir, 'rules.yml')], { encoding: 'utf8' });
    assert.match(checked, /SUCCESS: 8 rules found/);

    // A real scrape, under load, so that the latency histogram has series.
    const { metrics, app } = await supervised(t);
    assert.equal((await runBin(['bench', app, '-c', '2', '-d', '1s'])).code, 0);
    const text = await (await fetch(metrics)).text();
    const exported = families(text);
    const missing = metricsQueried().filter(
      (name) => !exported.has(name) && !exported.has(name.replace(/_(bucket|count|sum)$/, '')),
    );
    assert.deepEqual(missing, [], `queried but not exported; exported: ${[...exported].join(', ')}`);
  },
);

test(
  'a real Prometheus scrapes the supervisor, evaluates every rule, and fires NodescaleRestarts',
  { skip: noPrometheus, timeout: 120_000 },
  async (t) => {
    const { metrics } = await supervised(t);
    const rules = await runBin(['grafana', '--alerts']);
    const prometheus = await startPrometheus({ targets: [new URL(metrics).host], rules: rules.stdout });
    t.after(() => prometheus.stop());
    const api = async <T>(query: string) =>
      ((await (await fetch(`${prometheus.url}/api/v1/${query}`)).json()) as { data: T }).data;

    type Rules = { groups: { rules: { name: string; health: string; lastEvaluation: string }[] }[] };
    await waitUntil(
      async () => {
        const { groups } = await api<Rules>('rules').catch(() => ({ groups: [] }) as Rules);
        const all = groups.flatMap((group) => group.rules);
        return all.length === 8 && all.every((rule) => rule.health === 'ok' && !rule.lastEvaluation.startsWith('0001'));
      },
      'every rule evaluated, none in error',
      60_000,
    );
    await waitUntil(
      async () => (await api<{ result: unknown[] }>('query?query=nodescale_supervisor_worker_up')).result.length === 2,
      'both workers scraped, each labelled',
      30_000,
    );

    // Three crashes of one slot: its restarts go from 0 to 3 within the rule's 15 minutes.
    for (let i = 0; i < 3; i++) {
      const before = JSON.parse((await runBin(['status', '--name', `graf-${process.pid}`, '--json'])).stdout) as {
        workers: { slot: number; pid: number; state: string }[];
      };
      const victim = before.workers.find((w) => w.slot === 0 && w.state === 'ready')!;
      process.kill(victim.pid, 'SIGKILL');
      await waitUntil(
        async () => {
          const now = JSON.parse((await runBin(['status', '--name', `graf-${process.pid}`, '--json'])).stdout) as {
            workers: { slot: number; pid: number; state: string }[];
          };
          return now.workers.some((w) => w.slot === 0 && w.pid !== victim.pid && w.state === 'ready');
        },
        'slot 0 restarted',
        30_000,
      );
    }
    type Alerts = { alerts: { labels: { alertname: string }; state: string }[] };
    await waitUntil(
      async () =>
        (await api<Alerts>('alerts')).alerts.some(
          (a) => a.labels.alertname === 'NodescaleRestarts' && a.state === 'firing',
        ),
      'NodescaleRestarts fires',
      60_000,
    );
  },
);
