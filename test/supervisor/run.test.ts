import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runBench } from '../../src/loadtest/run.ts';
import { runBin } from '../helpers/cli.ts';
import { processesOf, startRun, SUPERVISED_APP } from '../helpers/supervisor.ts';
import { tempDir } from '../helpers/temp.ts';
import { closedPort } from '../helpers/servers.ts';
import { waitUntil } from '../helpers/wait.ts';

const APP = SUPERVISED_APP;

/** The pids of a process's children, sorted. */
function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .sort();
  } catch {
    return [];
  }
}

test('a crashing worker is restarted with growing delays; a crash loop stops and is reported, with no orphans', async (t) => {
  const run = startRun(t, ['-w', '1', '--max-restarts', '3'], { APP_MODE: 'crash-later', APP_CRASH_MS: '150' });
  await run.waitFor(/restarting in \d+ ms/);
  assert.ok(processesOf(run.name).includes(run.child.pid!), "the run's processes are found by their marker");
  await run.waitFor(/worker 0 stopped restarting: crash loop/);
  const delays = [...run.stderr().matchAll(/restarting in (\d+) ms/g)].map((m) => Number(m[1]));
  assert.equal(delays.length, 3);
  assert.ok(delays[0]! <= delays[1]! && delays[1]! <= delays[2]! && delays[2]! > delays[0]!, `growing: ${delays}`);
  assert.equal(await run.exited, 1, 'every worker given up: the supervisor exits 1');
  await waitUntil(() => processesOf(run.name).length === 0, 'no process of the run is left', 5000).catch(() => {});
  assert.deepEqual(processesOf(run.name), []);
});

test('an app that exits at once: NS_ERR_APP_CRASH_LOOP, exit 1, no orphans', async (t) => {
  const run = startRun(t, ['-w', '2', '--max-restarts', '2'], { APP_MODE: 'crash' });
  assert.equal(await run.exited, 1);
  assert.match(run.stderr(), /error NS_ERR_APP_CRASH_LOOP: worker \d cannot start: crash loop/);
  await waitUntil(() => processesOf(run.name).length === 0, 'no process of the run is left', 5000).catch(() => {});
  assert.deepEqual(processesOf(run.name), []);
});

test('reload under continuous load drops no request; status shows the new generation', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--stability', '300ms', '--probation', '300ms'], { APP_PORT: String(port) });
  await run.waitFor(/2 worker\(s\) ready/);
  let completed = 0;
  const load = runBench(
    { url: `http://127.0.0.1:${port}/`, connections: 8, durationMs: 4000 },
    { onProgress: (p) => (completed = p.completed) },
  );
  await waitUntil(() => completed > 0, 'the load is running');
  const first = await runBin(['reload', '--name', run.name]);
  assert.equal(first.code, 0, first.stderr);
  const second = await runBin(['reload', '--name', run.name, '--json']);
  assert.deepEqual(JSON.parse(second.stdout), { ok: true, replaced: 2 });
  const result = await load;
  assert.ok(result.requests.total > 1000);
  assert.equal(result.errors.total, 0, `no failed request during two reloads: ${JSON.stringify(result.errors)}`);
  const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout);
  assert.deepEqual(
    status.workers.map((w: { generation: number; state: string }) => [w.generation, w.state]),
    [
      [3, 'ready'],
      [3, 'ready'],
    ],
  );
  // Scale up and down.
  assert.deepEqual(JSON.parse((await runBin(['scale', '3', '--name', run.name, '--json'])).stdout), { workers: 3 });
  assert.equal(JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout).workers.length, 3);
  assert.deepEqual(JSON.parse((await runBin(['scale', '1', '--name', run.name, '--json'])).stdout), { workers: 1 });
  assert.equal(JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout).workers.length, 1);
  assert.equal((await runBin(['scale', '0', '--name', run.name])).code, 2);
  const stop = await runBin(['stop', '--name', run.name]);
  assert.equal(stop.code, 0);
  assert.equal(await run.exited, 0);
});

test('a reload whose new version fails is rolled back: exit 1, and the old workers keep serving', async (t) => {
  const dir = tempDir(t, 'ns-run-');
  const versionFile = path.join(dir, 'version');
  writeFileSync(versionFile, 'v1');
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--stability', '200ms', '--probation', '300ms'], {
    APP_PORT: String(port),
    APP_VERSION_FILE: versionFile,
  });
  await run.waitFor(/2 worker\(s\) ready/);
  writeFileSync(versionFile, 'broken-v2');
  const reload = await runBin(['reload', '--name', run.name]);
  assert.equal(reload.code, 1);
  assert.match(reload.stderr, /^error NS_ERR_RELOAD_ROLLED_BACK: reload rolled back after 0 worker\(s\)/);
  for (let i = 0; i < 5; i++) assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /^v1 /);
  // A good version reloads.
  writeFileSync(versionFile, 'v3');
  assert.equal((await runBin(['reload', '--name', run.name])).code, 0);
  assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /^v3 /);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('a plain node:http app (server.close on SIGTERM) loses no request over reloads under keep-alive load', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--stability', '200ms', '--probation', '100ms'], {
    APP_PORT: String(port),
    APP_MODE: 'plain',
  });
  await run.waitFor(/2 worker\(s\) ready/);
  const abort = new AbortController();
  let measuring!: () => void;
  const started = new Promise<void>((resolve) => (measuring = resolve));
  const load = runBench(
    { url: `http://127.0.0.1:${port}/`, connections: 16, durationMs: 120_000, timeoutMs: 10_000 },
    { signal: abort.signal, onProgress: () => measuring() },
  );
  await started;
  for (let i = 0; i < 3; i++) {
    const reload = await runBin(['reload', '--name', run.name]);
    assert.equal(reload.code, 0, reload.stderr);
  }
  abort.abort();
  const result = await load;
  assert.ok(result.requests.total > 0);
  assert.equal(result.errors.total, 0, `no failed request over 3 reloads: ${JSON.stringify(result.errors)}`);
  assert.equal(JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout).workers.length, 2);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('a graceful stop drains in-flight requests; apps without the runtime say ready themselves', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '1'], { APP_PORT: String(port), APP_MODE: 'plain' });
  await run.waitFor(/1 worker\(s\) ready/);
  const slow = fetch(`http://127.0.0.1:${port}/slow`);
  await run.waitFor(/slow request started/);
  const stop = await runBin(['stop', '--name', run.name]);
  assert.equal(stop.code, 0);
  const response = await slow;
  assert.equal(response.status, 200);
  assert.match(await response.text(), /^v1 /);
  assert.equal(await run.exited, 0);
});

test('a worker that never says ready is killed after --ready-timeout and counts as a crash', async (t) => {
  const run = startRun(t, ['-w', '1', '--ready-on', 'message', '--ready-timeout', '300ms', '--max-restarts', '1'], {
    APP_MODE: 'never-ready',
  });
  assert.equal(await run.exited, 1);
  assert.match(
    run.stderr(),
    /not ready within 300 ms \(with --ready-on message, a worker is ready when it calls process\.send\('ready'\) or its nodescale\/runtime says so\): killing it/,
  );
  assert.match(run.stderr(), /NS_ERR_APP_CRASH_LOOP/);
});

test('--ready-on listening: an app that listens and says nothing is ready once it listens', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '1', '--ready-on', 'listening', '--ready-timeout', '20s'], {
    APP_PORT: String(port),
    APP_MODE: 'never-ready',
  });
  await run.waitFor(/1 worker\(s\) ready/);
  assert.match(await (await fetch(`http://127.0.0.1:${port}/`)).text(), /^v1 /);
  assert.equal((await runBin(['run', APP, '--ready-on', 'soon'])).code, 2);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('stopping while workers start (a crash loop in its backoff, a slow start) exits 0 at once', async (t) => {
  const looping = startRun(t, ['-w', '1'], { APP_MODE: 'crash' });
  await looping.waitFor(/restarting in \d+ ms/);
  const stop = await runBin(['stop', '--name', looping.name]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(await looping.exited, 0, looping.stderr());
  assert.doesNotMatch(looping.stderr(), /unsettled|Warning/);
  const slow = startRun(t, ['-w', '1', '--ready-on', 'message'], { APP_MODE: 'never-ready' });
  await waitUntil(() => /app v1 listening/.test(slow.stdout()), 'the slow app listens');
  slow.kill('SIGTERM');
  assert.equal(await slow.exited, 0, slow.stderr());
  assert.match(slow.stderr(), /nodescale run: stopped/);
});

test('a worker killed while its replacement starts is not restarted beside it: the children are the workers status lists', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--stability', '2s', '--probation', '200ms'], { APP_PORT: String(port) });
  const [, supervisorPid] = await run.waitFor(/2 worker\(s\) ready; control socket \S+ \{"pid":(\d+)\}/);
  const before = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    workers: { slot: number; pid: number }[];
  };
  const old0 = before.workers.find((w) => w.slot === 0)!.pid;
  const reload = runBin(['reload', '--name', run.name]);
  await run.waitFor(/worker 0 ready \{"pid":\d+,"generation":2\}/);
  // Mid-reload, every child is listed: the two old workers and the new one on probation for slot 0.
  const during = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    workers: { pid: number }[];
  };
  assert.deepEqual(during.workers.map((w) => w.pid).sort(), children(Number(supervisorPid)));
  process.kill(old0, 'SIGKILL');
  await run.waitFor(/exited \(SIGKILL\) while its replacement starts: not restarted/);
  const outcome = await reload;
  assert.equal(outcome.code, 0, outcome.stderr);
  const after = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    workers: { pid: number; generation: number }[];
  };
  assert.deepEqual(
    after.workers.map((w) => w.generation),
    [2, 2],
  );
  assert.deepEqual(after.workers.map((w) => w.pid).sort(), children(Number(supervisorPid)));
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('--rollback none: a version that crashes after the stability window fails the reload in its probation (exit 1), and status says so', async (t) => {
  const dir = tempDir(t, 'ns-run-');
  const versionFile = path.join(dir, 'version');
  writeFileSync(versionFile, 'v1');
  const port = await closedPort();
  const run = startRun(t, ['-w', '1', '--stability', '200ms', '--probation', '20s', '--rollback', 'none'], {
    APP_PORT: String(port),
    APP_VERSION_FILE: versionFile,
    APP_CRASH_MS: '2500',
  });
  await run.waitFor(/1 worker\(s\) ready/);
  writeFileSync(versionFile, 'unstable-v2');
  const reload = await runBin(['reload', '--name', run.name]);
  assert.equal(reload.code, 1);
  assert.match(
    reload.stderr,
    /^error NS_ERR_RELOAD_UNSTABLE: reload failed after replacing 1 worker\(s\): generation 2 failed its probation: worker 0 \(pid \d+\) exited \(code 3\)/m,
  );
  const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    reload: { generation: number; state: string };
  };
  assert.deepEqual([status.reload.generation, status.reload.state], [2, 'failed-probation']);
  assert.match((await runBin(['status', '--name', run.name])).stdout, /last reload: generation 2, failed-probation: /);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('bad input: a missing app, a bad flag, a control socket in use, no supervisor', async (t) => {
  const missing = await runBin(['run', '/nonexistent/app.js']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error NS_ERR_APP_NOT_FOUND: no app file at \/nonexistent\/app\.js/);
  const directory = await runBin(['run', tmpdir()]);
  assert.equal(directory.code, 2);
  assert.match(directory.stderr, /^error NS_ERR_APP_NOT_FOUND: \S+ is not a file/);
  assert.equal((await runBin(['run', APP, '-w', 'many'])).code, 2);
  const port = await closedPort();
  const run = startRun(t, ['-w', '1'], { APP_PORT: String(port) });
  await run.waitFor(/1 worker\(s\) ready/);
  const twin = await runBin(['run', APP, '--name', run.name, '-w', '1']);
  assert.equal(twin.code, 1);
  assert.match(twin.stderr, /NS_ERR_ADMIN_IN_USE/);
  const nobody = await runBin(['status', '--name', 'nobody-runs-this']);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /^error NS_ERR_SUPERVISOR_UNREACHABLE/);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('--max-memory replaces a bloated worker by rolling replacement, without a failed request', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '1', '--max-memory', '120mb', '--memory-check', '100ms', '--stability', '200ms'], {
    APP_PORT: String(port),
    APP_BLOAT_MB: '160',
  });
  await run.waitFor(/1 worker\(s\) ready/);
  const before = (await (await fetch(`http://127.0.0.1:${port}/`)).text()).split(' ')[1];
  const load = runBench({ url: `http://127.0.0.1:${port}/`, connections: 4, durationMs: 2500 });
  await run.waitFor(/over --max-memory: replacing it/);
  // The replacement is done (the old worker drained) when the supervisor says so, however long a busy machine takes.
  await run.waitFor(/worker 0 replaced \(memory\): pid (\d+)/, 60_000);
  const result = await load;
  assert.equal(result.errors.total, 0, `no failed request: ${JSON.stringify(result.errors)}`);
  const after = (await (await fetch(`http://127.0.0.1:${port}/`)).text()).split(' ')[1];
  assert.notEqual(after, before, 'another process serves now');
  // Every new worker bloats too, so it is replaced in turn: the one serving is one of the logged replacements.
  const replacements = [...run.stderr().matchAll(/worker 0 replaced \(memory\): pid (\d+)/g)].map((m) => m[1]);
  const logged = [...run.stderr().matchAll(/worker 0 ready \{"pid":(\d+)/g)].map((m) => m[1]);
  assert.ok(replacements.includes(after) || logged.at(-1) === after, `${after} in ${replacements}`);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('--metrics: every worker on one endpoint, labelled by worker; a stuck worker is left out, not waited for', async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--metrics', '0', '--metrics-timeout', '300ms'], { APP_PORT: String(port) });
  const [, url] = await run.waitFor(/metrics (http:\S+)/);
  await Promise.all(Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.text())));
  // The scrape asks each worker for its registry: once both have counted all 20, the series are complete.
  let text = '';
  const counted = () =>
    [
      ...text.matchAll(
        /^nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200",worker="\d"\} (\d+)$/gm,
      ),
    ].reduce((sum, m) => sum + Number(m[1]), 0);
  await waitUntil(async () => {
    text = await (await fetch(url!)).text();
    return counted() === 20;
  }, 'both workers counted the 20 requests');
  for (const worker of ['0', '1']) {
    assert.match(text, new RegExp(`^nodescale_supervisor_worker_up\\{worker="${worker}"\\} 1$`, 'm'));
    assert.match(text, new RegExp(`^process_resident_memory_bytes\\{worker="${worker}"\\} \\d+`, 'm'));
  }
  // Each worker's own series, not summed: the request counts of the two add up to what was sent.
  const counts = [
    ...text.matchAll(
      /^nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200",worker="(\d)"\} (\d+)$/gm,
    ),
  ];
  assert.equal(counts.length, 2, text);
  assert.equal(
    counts.reduce((sum, m) => sum + Number(m[2]), 0),
    20,
  );
  // One worker stuck for 2 s: the scrape answers before it is free, with that worker down and the other up.
  let blockDone = false;
  const block = fetch(`http://127.0.0.1:${port}/block`).then(async (r) => {
    await r.text();
    blockDone = true;
  });
  await run.waitFor(/block started/);
  const during = await (await fetch(url!)).text();
  assert.equal(blockDone, false, 'the scrape came back while the worker was still stuck');
  const up = [...during.matchAll(/^nodescale_supervisor_worker_up\{worker="(\d)"\} (\d)$/gm)].map((m) => m[2]).sort();
  assert.deepEqual(up, ['0', '1']);
  await block;
  assert.equal((await fetch(url!.replace('/metrics', '/other'))).status, 404);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test("--console: a worker's admin console through the control socket; --log-format json", async (t) => {
  const port = await closedPort();
  const run = startRun(t, ['-w', '2', '--console', '--log-format', 'json'], { APP_PORT: String(port) });
  await run.waitFor(/"message":"2 worker\(s\) ready/);
  // The supervisor's own records carry a level, as a log pipeline expects.
  const own = run
    .stderr()
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { source?: string; level?: string });
  assert.ok(own.length > 0 && own.every((r) => r.source !== 'supervisor' || r.level === 'info'), run.stderr());
  const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    workers: { slot: number; pid: number }[];
  };
  const info = await runBin(['console', '--name', run.name, '--worker', '1', 'info', '--json']);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).pid, status.workers.find((w) => w.slot === 1)!.pid);
  const none = await runBin(['console', '--name', run.name, '--worker', '7', 'info']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^error NS_ERR_WORKER_NO_CONSOLE: there is no worker 7/);
  // Worker output, one JSON object a line, with the worker and its pid.
  const lines = run
    .stdout()
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { worker: number; pid: number; stream: string; message: string });
  assert.deepEqual(lines.map((l) => l.worker).sort(), [0, 1]);
  assert.ok(
    lines.every(
      (l) => l.stream === 'stdout' && l.message === 'app v1 listening' && status.workers.some((w) => w.pid === l.pid),
    ),
  );
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});

test('a worker without --console has none', async (t) => {
  const run = startRun(t, ['-w', '1']);
  await run.waitFor(/1 worker\(s\) ready/);
  const none = await runBin(['console', '--name', run.name, '--worker', '0', 'info']);
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /NS_ERR_WORKER_NO_CONSOLE: the workers have no console: start nodescale run with --console/,
  );
  assert.equal((await runBin(['run', APP, '--log-format', 'xml'])).code, 2);
  assert.equal((await runBin(['run', APP, '--metrics', 'nope'])).code, 2);
  await runBin(['stop', '--name', run.name]);
  assert.equal(await run.exited, 0);
});
