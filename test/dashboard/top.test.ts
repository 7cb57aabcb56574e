/**
 * `nodescale top` and `nodescale dashboard --name`, both reading running supervisors through their control sockets
 * (`watch`). top in a pseudo-terminal (util-linux's script) at 80×24 shows both workers and quits on `q`; its frame
 * fits 80×24 with 64 workers. The dashboard shows two supervisors on one page, one section each.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { test } from 'node:test';
import { sparkline, topFrame } from '../../src/cli/top.ts';
import type { AppPoint, WorkerRow } from '../../src/dashboard/collector.ts';
import { listenForAnnouncements } from '../../src/ipc.ts';
import { BIN, runBin } from '../helpers/cli.ts';
import { startSupervised } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

const row = (slot: number): WorkerRow => ({
  slot,
  pid: 10_000 + slot,
  generation: 1,
  state: 'ready',
  uptimeSeconds: 3600,
  restarts: 0,
  rssBytes: 100 << 20,
  eventLoopDelayP99Ms: slot === 7 ? 900 : 2,
  requestsPerSecond: 1000,
  utilization: 0.3,
  cpuPercent: 30,
  heapUsedBytes: 20 << 20,
  inFlight: 3,
  shedPerSecond: 0,
});

test('the frame fits 80×24 with 64 workers; sorting by loop delay puts the blocked worker first', () => {
  const workers = Array.from({ length: 64 }, (_, i) => row(i));
  const points = Array.from({ length: 120 }, (_, i) => ({ requestsPerSecond: i, eventLoopDelayP99Ms: 2 }) as AppPoint);
  const frame = topFrame({ name: 'api', points, workers, sortKey: 'eventLoopDelayP99Ms', columns: 80, rows: 24 });
  assert.equal(frame.length, 24);
  assert.deepEqual(
    frame.filter((line) => line.length > 80),
    [],
  );
  assert.match(frame.at(-1)!, /^… 46 more/);
  assert.match(frame[5]!, /^ +7 +10007 /, 'the worst loop first');
  assert.equal(sparkline([0, 7, 14, null], 4), '▁▄█ ');
  assert.ok(topFrame({ name: 'api', points, workers, sortKey: 'slot', columns: 200, rows: 100 }).length === 69);
});

test('top in a pseudo-terminal shows both workers and quits on q', { timeout: 90_000 }, async (t) => {
  const name = `top-${process.pid}`;
  await startSupervised(t, name);
  // script gives top a terminal (80×24); its output is what the terminal was sent.
  const top = spawn(
    'script',
    ['-qfec', `stty cols 80 rows 24; ${process.execPath} ${BIN} top --name ${name}`, '/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  t.after(() => void (top.exitCode === null && top.kill('SIGKILL')));
  let screen = '';
  top.stdout.on('data', (chunk: Buffer) => (screen += chunk));
  await waitUntil(
    () => /\n {3}0 +\d+ +ready/.test(screen) && /\n {3}1 +\d+ +ready/.test(screen),
    'both workers on the screen',
    30_000,
  );
  top.stdin.write('q');
  const [code] = (await once(top, 'exit')) as [number];
  assert.equal(code, 0, screen.slice(-2000));
  assert.ok(screen.includes('\u001b[?1049l'), 'the terminal is given back (alternate screen left)');
});

test(
  'nodescale dashboard --name a --name b: two supervisors on one page; with an admin token, scale either',
  { timeout: 90_000 },
  async (t) => {
    const names = [`dash-a-${process.pid}`, `dash-b-${process.pid}`];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-top-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(path.join(dir, 'admin'), adminToken, { mode: 0o600 });
    for (const name of names) await startSupervised(t, name);
    const urls: Record<string, string> = {};
    const announcements = await listenForAnnouncements((a) => (urls[a.service] = a.url));
    t.after(() => announcements.close());
    const dashboard = spawn(
      process.execPath,
      [
        ...[BIN, 'dashboard', ...names.flatMap((n) => ['--name', n]), '--listen', '0'],
        ...['--admin-token-file', path.join(dir, 'admin')],
      ],
      {
        env: { ...process.env, ...announcements.env },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    dashboard.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
    t.after(() => t.diagnostic(`dashboard: ${stderr}`));
    t.after(async () => {
      if (dashboard.exitCode === null) {
        dashboard.kill('SIGTERM');
        await once(dashboard, 'exit');
      }
    });
    await waitUntil(() => urls.dashboard !== undefined || dashboard.exitCode !== null, 'the dashboard listens', 30_000);
    assert.ok(urls.dashboard, stderr);
    type Snapshot = { apps: { name: string; workers: unknown[]; points: unknown[] }[] };
    await waitUntil(
      async () => {
        const { apps } = (await (await fetch(`${urls.dashboard}api/snapshot`)).json()) as Snapshot;
        return apps.length === 2 && apps.every((app) => app.workers.length === 2 && app.points.length > 0);
      },
      'both apps, each with its two workers',
      30_000,
    );
    const { apps } = (await (await fetch(`${urls.dashboard}api/snapshot`)).json()) as Snapshot;
    assert.deepEqual(
      apps.map((app) => app.name),
      names,
    );
    // The second app scaled through the page's action, with the admin token: its own control socket, audited.
    const scaled = await fetch(`${urls.dashboard}api/action`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-nodescale-admin-token': adminToken },
      body: JSON.stringify({ app: names[1], action: 'scale', workers: 1 }),
    });
    assert.equal(scaled.status, 200, await scaled.clone().text());
    const status = JSON.parse((await runBin(['status', '--name', names[1]!, '--json'])).stdout) as {
      workers: unknown[];
    };
    assert.equal(status.workers.length, 1);
    const audit = stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      audit.map(({ message, app, action, args, ok }) => ({ message, app, action, args, ok })),
      [{ message: 'dashboard action', app: names[1], action: 'scale', args: { workers: 1 }, ok: true }],
    );
  },
);
