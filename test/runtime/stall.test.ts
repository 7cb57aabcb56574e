/**
 * Stall capture (`protect(server, { stall })`), as a user gets it under `nodescale run`: a route that busy-loops 2 s
 * is caught while it runs — one capture per stall, naming the function and the route (never its query string),
 * written 0600 next to the crash bundles, counted in /metrics, listed by the console's `stalls`, marked on the
 * dashboard — and the worker keeps serving after. A steady app under load has none.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ADMIN_COMMANDS, type AdminCommand } from '../../src/admin/commands.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { resolveRuntimeOptions } from '../../src/runtime/options.ts';
import { blamedFrame, stackTop, writeStallFile, type StallCapture } from '../../src/runtime/stall-file.ts';
import type { StallReport } from '../../src/runtime/stall.ts';
import { AdminClient } from '../../src/socket/client.ts';
import { askSupervisor, defaultControlPath } from '../../src/supervisor/control.ts';
import { startSupervised } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

test('stall options: off by default, true for the defaults, values checked; `stalls` where it is off', async () => {
  assert.equal(resolveRuntimeOptions({}).stall, null);
  assert.deepEqual(
    { ...resolveRuntimeOptions({ stall: true }).stall, dir: 'd' },
    { thresholdMs: 500, profileMs: 1000, maxPerMinute: 10, keep: 50, dir: 'd' },
  );
  assert.throws(() => resolveRuntimeOptions({ stall: { thresholdMs: 10 } }), { code: 'NS_ERR_INVALID_OPTION' });
  assert.throws(() => resolveRuntimeOptions({ stall: { profileMs: -1 } }), { code: 'NS_ERR_INVALID_OPTION' });
  assert.throws(() => resolveRuntimeOptions({ stall: { profileMs: 60_000 } }), /stall\.profileMs/);
  assert.equal(resolveRuntimeOptions({ stall: { profileMs: 0 } }).stall?.profileMs, 0);
  assert.throws(() => resolveRuntimeOptions({ stall: { every: 1 } as never }), /stall\.every/);
  const ctx = { runtime: { options: { stall: null } } } as unknown as Parameters<AdminCommand['run']>[0];
  await assert.rejects(ADMIN_COMMANDS.get('stalls')!.run(ctx, 1, {}), { code: 'NS_ERR_STALL_OFF' });
});

test("stack samples summed up by function, Node's internals counted to the program's caller; a capture rotated out takes its profile with it", (t) => {
  const frame = (fn: string, url: string, line = 1) => ({ function: fn, url, line, column: 1 });
  const hot = frame('hot', 'file:///a.js', 10);
  const outer = frame('outer', 'file:///a.js', 1);
  const internal = frame('now', 'node:internal/perf/utils');
  const native = frame('now', '');
  const stacks = [[hot, outer], [internal, hot, outer], [native, hot, outer], [outer], [internal]];
  assert.deepEqual(stackTop(stacks), [
    { ...hot, share: 0.6 },
    { ...outer, share: 0.2 },
    { ...internal, share: 0.2 }, // nothing of the program's on that stack: the innermost frame
  ]);
  assert.deepEqual(stackTop([]), []);
  assert.equal(blamedFrame([internal, native, outer]), outer);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-stall-keep-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const capture = (second: number): StallCapture => ({
    time: `2026-12-04T00:00:0${second}.000Z`,
    pid: 7,
    thresholdMs: 500,
    capturedAfterMs: 510,
    late: false,
    stack: [],
    request: null,
    heldMs: null,
    profile: null,
    file: null,
  });
  const first = writeStallFile(dir, capture(1), 2);
  writeFileSync(first.replace(/\.json$/, '.cpuprofile'), '{}');
  writeStallFile(dir, capture(2), 2);
  assert.equal(readdirSync(dir).length, 3);
  writeStallFile(dir, capture(3), 2);
  assert.deepEqual(readdirSync(dir).sort(), [
    'stall-2026-12-04T00-00-02-000Z-7.json',
    'stall-2026-12-04T00-00-03-000Z-7.json',
  ]);
});

test(
  'a route that blocks the loop 2 s: caught while it runs, named, counted, listed and marked; none under steady load',
  { timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-stall-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const name = `stall-${process.pid}`;
    const run = await startSupervised(t, name, ['-w', '1', '--console', '--metrics', '0', '--dashboard', '0'], {
      APP_STALL_DIR: dir,
    });
    const stallFiles = () => readdirSync(dir).filter((file) => file.startsWith('stall-'));

    // Steady load first: no stall.
    const steady = await runBench({ url: run.app, connections: 8, durationMs: 2000 });
    assert.ok(steady.requests.total > 100);
    assert.deepEqual(stallFiles(), [], 'no capture on a steady app under load');

    const blocked = await fetch(`${run.app}block?token=s3cret-value`);
    assert.equal(blocked.status, 200);
    await waitUntil(() => stallFiles().some((f) => f.endsWith('.json')), 'the capture written', 10_000);
    const file = path.join(
      dir,
      stallFiles().find((f) => f.endsWith('.json'))!,
    );
    await waitUntil(
      () => (JSON.parse(readFileSync(file, 'utf8')) as { heldMs: number | null }).heldMs !== null,
      'the capture completed once the loop turned',
      10_000,
    );
    const text = readFileSync(file, 'utf8');
    const capture = JSON.parse(text) as NonNullable<StallReport['capture']>;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(capture.stack[0]?.function, 'blockTheLoop', JSON.stringify(capture.stack.slice(0, 3)));
    assert.match(capture.stack[0]!.url, /fixtures\/supervised-app\.ts$/);
    assert.equal(capture.request, 'GET /block');
    assert.ok(capture.heldMs! >= 1500 && capture.capturedAfterMs < capture.heldMs!, JSON.stringify(capture));
    assert.doesNotMatch(text, /s3cret/, 'no query string in the capture');

    // Then the rest of the block profiled: its stack samples say the time went to the function that held it (inlined
    // or not), and the whole CPU profile is beside the capture for DevTools.
    const profile = capture.profile;
    assert.ok(profile !== null && profile.samples > 0 && profile.stacks > 0, JSON.stringify(profile));
    assert.equal(profile.top[0]?.function, 'blockTheLoop', JSON.stringify(profile.top));
    assert.match(profile.top[0].url, /fixtures\/supervised-app\.ts$/);
    assert.equal(profile.file, file.replace(/\.json$/, '.cpuprofile'));
    assert.equal(statSync(profile.file).mode & 0o777, 0o600);
    const cpuprofile = JSON.parse(readFileSync(profile.file, 'utf8')) as { nodes: unknown[]; samples: number[] };
    assert.ok(cpuprofile.nodes.length > 0 && cpuprofile.samples.length === profile.samples);

    // The worker keeps serving; one capture for the one stall.
    assert.equal((await fetch(run.app)).status, 200);
    assert.deepEqual(
      stallFiles()
        .map((f) => path.extname(f))
        .sort(),
      ['.cpuprofile', '.json'],
    );

    // Counted in /metrics, per worker.
    const metrics = await (await fetch(run.urls.metrics!)).text();
    assert.match(metrics, /nodescale_event_loop_stalls_total\{[^}]*captured="true"[^}]*\} 1/);

    // Listed by the console's `stalls` (the last ones first, then each new one).
    const { socketPath } = (await askSupervisor(defaultControlPath(name), 'console', { worker: 0 })) as {
      socketPath: string;
    };
    const client = await AdminClient.connect(socketPath);
    t.after(() => client.close());
    const listed: StallReport[] = [];
    const id = client.nextId;
    const streamed = client.request('stalls', {}, { onEvent: (event) => listed.push(event as StallReport) });
    await waitUntil(() => listed.length === 1, 'the console lists the stall', 10_000);
    await client.request('unwatch', { id });
    await streamed;
    assert.equal(listed[0]!.capture?.file, file);
    assert.equal(listed[0]!.capture?.stack[0]?.function, 'blockTheLoop');

    // Marked on the dashboard, naming the function and the request.
    const { apps } = (await (await fetch(`${run.urls.dashboard}api/snapshot`)).json()) as {
      apps: { events: { kind: string; detail?: string }[] }[];
    };
    const mark = apps[0]!.events.find((event) => event.kind === 'stall');
    assert.ok(mark, 'a stall mark');
    assert.match(mark.detail!, /held \d+ ms in blockTheLoop \(.*supervised-app\.ts:\d+:\d+\); GET \/block; /);
  },
);

test('a process that exits in the middle of a capture exits at once, without "Waiting for the debugger"', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-stall-exit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Blocked 1.5 s, then process.exit(): the capture's profile (1 s by default) is still running then.
  const code = `
    import http from 'node:http';
    import { protect } from 'nodescale/runtime';
    const server = http.createServer((_req, res) => res.end());
    protect(server, { stall: { dir: ${JSON.stringify(dir)} }, logger: () => {} });
    server.listen(0, '127.0.0.1', () => setTimeout(() => {
      const end = Date.now() + 1500;
      while (Date.now() < end);
      process.exit(0);
    }, 100));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0, stderr);
  assert.doesNotMatch(stderr, /Waiting for the debugger/);
  assert.ok(
    readdirSync(dir).some((file) => file.endsWith('.json')),
    'the stall was captured before the exit',
  );
});

test('a debugger holding the thread at a pause is no stall, and is left paused; a block after it is caught', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-stall-debugger-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A "DevTools" of its own in a worker thread: enables the debugger after 1 s (the main thread busy announcing its
  // scripts may itself be a stall), pauses the main thread after 2 s and resumes it 1.5 s later (the heartbeat stops
  // meanwhile, as in a stall). Then the main thread blocks its loop 1 s in holdTheLoop. Each event is a JSON line on stdout, the debugger's written from its
  // own thread while the main thread is paused.
  const code = `
    import http from 'node:http';
    import { Worker } from 'node:worker_threads';
    import { protect } from 'nodescale/runtime';
    const say = (event) => process.stdout.write(JSON.stringify(event) + '\\n');
    const server = http.createServer((_req, res) => res.end());
    const runtime = protect(server, { stall: { dir: ${JSON.stringify(dir)}, thresholdMs: 200 }, logger: () => {} });
    runtime.on('stall', (report) => say({ stall: report.capture?.stack[0]?.function ?? null, why: report.why }));
    const devtools = new Worker(\`
      const { Session } = require('node:inspector/promises');
      const { writeSync } = require('node:fs');
      const say = (event) => writeSync(1, JSON.stringify(event) + '\\\\n');
      const session = new Session();
      session.connectToMainThread();
      // Its own pause, not the watchdog's (every session with the debugger on sees every pause).
      let asked = false;
      let resuming = false;
      session.on('Debugger.paused', () => {
        if (!asked || resuming) return;
        say({ paused: true });
        session.once('Debugger.resumed', () => say({ resumed: resuming ? 'by the debugger' : 'by someone else' }));
        setTimeout(() => { resuming = true; void session.post('Debugger.resume'); }, 1500);
      });
      setTimeout(() => void session.post('Debugger.enable'), 1000);
      setTimeout(() => { asked = true; void session.post('Debugger.pause'); }, 2000);
      setInterval(() => {}, 1000);
    \`, { eval: true, execArgv: [] });
    server.listen(0, '127.0.0.1', () => {
      setTimeout(function holdTheLoop() {
        say({ blocking: true });
        const end = Date.now() + 1000;
        while (Date.now() < end);
      }, 4500);
      setTimeout(() => process.exit(0), 7000);
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0, stderr);
  const events = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const at = (event: Record<string, unknown>) => events.findIndex((e) => JSON.stringify(e) === JSON.stringify(event));
  const paused = at({ paused: true });
  assert.ok(paused >= 0, stdout);
  // Nobody but the debugger resumed it, nothing reported meanwhile, and the block after it caught.
  assert.deepEqual(
    events.slice(paused),
    [{ paused: true }, { resumed: 'by the debugger' }, { blocking: true }, { stall: 'holdTheLoop' }],
    stdout,
  );
});

test('while the inspector is open, a stall is reported, not captured (a debugger may hold the loop)', async () => {
  const code = `
    import http from 'node:http';
    import inspector from 'node:inspector';
    import { protect } from 'nodescale/runtime';
    const server = http.createServer((_req, res) => res.end());
    const runtime = protect(server, { stall: { thresholdMs: 200 }, logger: () => {} });
    runtime.on('stall', (report) => console.log(JSON.stringify({ captured: report.capture !== null, why: report.why })));
    inspector.open(0, '127.0.0.1', false);
    server.listen(0, '127.0.0.1', () => setTimeout(() => {
      const end = Date.now() + 800;
      while (Date.now() < end);
      setTimeout(() => { inspector.close(); process.exit(0); }, 300);
    }, 300));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.resume();
  const [status] = (await once(child, 'exit')) as [number | null];
  assert.equal(status, 0);
  assert.deepEqual(JSON.parse(stdout.trim()), { captured: false, why: 'the inspector is open' });
});
