/**
 * A reload's rollback that is real (rollback 'parked', the default): during probation the previous generation is
 * kept alive and accepting nothing; a new version that crashes 3 s after it was ready is rolled back, the old
 * version answers again, and the load through it loses at most the requests the crashing workers held. For a
 * runtime app and for a plain node:http app (the drain preload parks both).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runBin } from '../helpers/cli.ts';
import { closedPort } from '../helpers/servers.ts';
import { startRun } from '../helpers/supervisor.ts';

const PLAIN_VERSIONED = (version: string, crashMs: number | null) => `import http from 'node:http';
const server = http.createServer((req, res) => res.end('${version}'));
server.listen(Number(process.env.APP_PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
${crashMs === null ? '' : `server.on('listening', () => setTimeout(() => process.exit(3), ${crashMs}));`}
`;

/** Clients sending GETs one after another on keep-alive connections until stopped: each answer's body, or 'failed'. */
function load(port: number, clients: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const answers: { at: number; body: string }[] = [];
  let running = true;
  const get = () =>
    new Promise<string>((resolve) => {
      // A deadline: a connection node:cluster loses (nodejs/node#21746) is a failure here, not a hung test.
      http
        .get({ host: '127.0.0.1', port, path: '/', agent, timeout: 10_000 }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve(body.split(' ')[0]!));
        })
        .on('timeout', function (this: http.ClientRequest) {
          this.destroy(new Error('no answer in 10 s'));
        })
        .on('error', () => resolve('failed'));
    });
  const done = Promise.all(
    Array.from({ length: clients }, async () => {
      while (running) answers.push({ at: Date.now(), body: await get() });
    }),
  );
  return {
    answers,
    async stop() {
      running = false;
      await done;
      agent.destroy();
    },
  };
}

for (const kind of ['runtime', 'plain'] as const) {
  test(`${kind} app: a version that crashes 3 s after ready is rolled back; the old one answers again, and the load loses at most what it held`, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ns-rollback-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const port = await closedPort();
    const versionFile = path.join(dir, 'version');
    const plainApp = path.join(dir, 'server.mjs');
    writeFileSync(versionFile, 'v1');
    writeFileSync(plainApp, PLAIN_VERSIONED('v1', null));
    const env = { APP_PORT: String(port), APP_VERSION_FILE: versionFile, APP_CRASH_MS: '3000' };
    const run = startRun(
      t,
      ['-w', '2', '--stability', '200ms', '--probation', '8s'],
      env,
      ...(kind === 'plain' ? [plainApp] : []),
    );
    await run.waitFor(/2 worker\(s\) ready/);
    const traffic = load(port, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (kind === 'plain') writeFileSync(plainApp, PLAIN_VERSIONED('v2', 3000));
    else writeFileSync(versionFile, 'unstable-v2');
    const reload = await runBin(['reload', '--name', run.name]);
    const backAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await traffic.stop();
    assert.equal(reload.code, 1, reload.stderr);
    assert.match(
      reload.stderr,
      /^error NS_ERR_RELOAD_ROLLED_BACK: reload rolled back after 2 worker\(s\): generation 2 failed its probation: worker \d \(pid \d+\) exited \(code 3\).*; rolled back: 2 worker\(s\) of generation 1 serve again/m,
    );
    const bodies = traffic.answers.map((a) => a.body);
    const failed = bodies.filter((b) => b === 'failed').length;
    const after = traffic.answers.filter((a) => a.at > backAt);
    // From the last answer of the new version (its workers crashing) to the old version's first answer after it.
    const lastNew = Math.max(...traffic.answers.filter((a) => a.body !== 'v1' && a.body !== 'failed').map((a) => a.at));
    const oldAgain = traffic.answers.find((a) => a.at >= lastNew && a.body === 'v1')?.at ?? NaN;
    t.diagnostic(
      `${kind}: the old version answered again ${oldAgain - lastNew} ms after the new one's last answer; ${bodies.length} requests, ${bodies.filter((b) => b === 'v2' || b === 'unstable-v2').length} on v2, ${failed} failed; after the rollback ${after.length}, all ${[...new Set(after.map((a) => a.body))].join(', ')}`,
    );
    assert.ok(
      bodies.some((b) => b !== 'v1' && b !== 'failed'),
      'the new version served during its probation',
    );
    // The crashing workers held at most one request per client each when they died.
    assert.ok(failed <= 4, `${failed} failed`);
    assert.ok(after.length > 0 && after.every((a) => a.body === 'v1'), 'the old version answers again');
    const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
      workers: { generation: number; state: string }[];
      reload: { generation: number; state: string };
    };
    assert.deepEqual(
      status.workers.map((w) => [w.generation, w.state]),
      [
        [1, 'ready'],
        [1, 'ready'],
      ],
    );
    assert.equal(status.reload.state, 'rolled-back');
    assert.equal((await runBin(['stop', '--name', run.name])).code, 0);
  });
}

test('a version that passes its probation: the parked generation is stopped, nothing is left of it', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-rollback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await closedPort();
  const versionFile = path.join(dir, 'version');
  writeFileSync(versionFile, 'v1');
  const run = startRun(t, ['-w', '2', '--stability', '200ms', '--probation', '1s'], {
    APP_PORT: String(port),
    APP_VERSION_FILE: versionFile,
  });
  await run.waitFor(/2 worker\(s\) ready/);
  writeFileSync(versionFile, 'v2');
  const reloading = runBin(['reload', '--name', run.name]);
  // During probation, status shows the parked generation beside the new one.
  let sawParked = false;
  for (let i = 0; i < 100 && !sawParked; i++) {
    const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
      workers: { generation: number; state: string }[];
    };
    sawParked = status.workers.some((w) => w.generation === 1 && w.state === 'parked');
  }
  assert.ok(sawParked, 'the old generation was parked during probation');
  assert.equal((await reloading).code, 0);
  const status = JSON.parse((await runBin(['status', '--name', run.name, '--json'])).stdout) as {
    workers: { generation: number; state: string }[];
  };
  assert.deepEqual(
    status.workers.map((w) => [w.generation, w.state]),
    [
      [2, 'ready'],
      [2, 'ready'],
    ],
  );
  assert.equal(
    await fetch(`http://127.0.0.1:${port}/`)
      .then((r) => r.text())
      .then((b) => b.split(' ')[0]),
    'v2',
  );
  assert.equal((await runBin(['stop', '--name', run.name])).code, 0);
});
