import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startFixture } from '../helpers/child.ts';
import { RUNTIME_DEFAULTS } from '../../src/runtime/options.ts';
import { redactArgv } from '../../src/redact.ts';
import { Runtime } from '../../src/runtime/runtime.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function leakOptions(snapshotDir: string): string {
  // Judged over a short window for the test; 50 MB/min is far above the noise of a steady process.
  return JSON.stringify({
    leak: { windowMs: 60_000, minSamples: 5, minGrowthBytesPerMinute: 50 * 1024 * 1024, horizonMs: 1e12, snapshotDir },
  });
}

async function drive(url: string, route: string, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await (await fetch(`${url}${route}?kb=1024`)).text();
    await (await fetch(`${url}gc`)).text();
    await sleep(150);
  }
}

test('a leaking route makes the detector fire and write a 0600 heap snapshot', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-leak-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startFixture(t, 'protected-server.ts', { NS_TEST_OPTIONS: leakOptions(dir) }, ['--expose-gc']);
  await drive(server.url, 'leak', 8);
  const leak = await server.waitFor((e) => e.event === 'leak');
  const report = leak.data as { growthBytesPerMinute: number; r2: number; snapshot: string };
  assert.ok(report.growthBytesPerMinute > 50 * 1024 * 1024);
  assert.ok(report.r2 >= 0.6);
  assert.ok(report.snapshot.startsWith(dir));
  assert.equal(statSync(report.snapshot).mode & 0o777, 0o600);
  const snapshot = JSON.parse(readFileSync(report.snapshot, 'utf8')) as {
    snapshot: { meta: { node_fields: string[] }; node_count: number };
  };
  assert.ok(snapshot.snapshot.meta.node_fields.includes('self_size'), 'a V8 heap snapshot');
  assert.ok(snapshot.snapshot.node_count > 1000);
  const metrics = await (await fetch(`${server.url}metrics`)).text();
  assert.match(metrics, /nodescale_leak_suspected 1/);
});

test('a route that allocates and drops the same amount stays silent', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-steady-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startFixture(t, 'protected-server.ts', { NS_TEST_OPTIONS: leakOptions(dir) }, ['--expose-gc']);
  await drive(server.url, 'steady', 8);
  await sleep(300);
  assert.equal(server.events.filter((e) => e.event === 'leak').length, 0);
  assert.deepEqual(readdirSync(dir), []);
  assert.match(await (await fetch(`${server.url}metrics`)).text(), /nodescale_leak_suspected 0/);
});

for (const [route, origin, message] of [
  ['crash', 'uncaughtException', 'boom from /crash'],
  ['reject', 'unhandledRejection', 'rejected from /reject'],
] as const) {
  test(`an ${origin} writes a crash bundle with secrets redacted, then the process exits non-zero`, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ns-crash-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const server = await startFixture(
      t,
      'protected-server.ts',
      {
        NS_TEST_OPTIONS: JSON.stringify({ sampleIntervalMs: 50, postMortem: { dir } }),
        NS_TEST_SECRET: 'hunter2-do-not-leak',
      },
      [],
      [
        '--db-password=arg-do-not-leak',
        '--api-token',
        'token-do-not-leak',
        'postgres://app:url-do-not-leak@db/x',
        '--port',
        '3000',
      ],
    );
    await server.waitForCount((e) => e.event === 'sample', 3);
    await (await fetch(`${server.url}${route}`)).text();
    const { code } = await server.exited;
    assert.equal(code, 1);
    assert.match(server.stderr(), new RegExp(message), 'the error and its stack are printed');
    const [bundle] = readdirSync(dir);
    assert.ok(bundle?.startsWith('crash-'));
    const read = (name: string) => readFileSync(path.join(dir, bundle!, name), 'utf8');
    const error = JSON.parse(read('error.json'));
    assert.equal(error.message, message);
    assert.equal(error.origin, origin);
    assert.match(error.stack, /protected-server\.ts/);
    const report = read('report.json');
    assert.doesNotMatch(report, /do-not-leak/);
    assert.deepEqual(JSON.parse(report).header.commandLine.slice(-6), [
      '--db-password=[redacted]',
      '--api-token',
      '[redacted]',
      'postgres://app:[redacted]@db/x',
      '--port',
      '3000',
    ]);
    assert.equal(JSON.parse(report).environmentVariables.NS_TEST_SECRET, '[redacted]');
    const samples = JSON.parse(read('samples.json'));
    assert.ok(Array.isArray(samples) && samples.length > 0 && 'eventLoop' in samples[0]);
    assert.equal(statSync(path.join(dir, bundle!)).mode & 0o777, 0o700);
    assert.ok(server.events.some((e) => e.msg === 'uncaught exception: crash bundle written'));
  });
}

test('secrets on a command line are redacted by name and in URLs; the rest is kept', () => {
  assert.deepEqual(
    redactArgv([
      'node',
      'app.js',
      '--password',
      'p1',
      '--client-secret=s1',
      '--AUTH=a1',
      '--apikey',
      'k1',
      '--key',
      'server.key',
      'redis://:r1@h:6379',
      '--verbose',
      '--token',
      '--next',
    ]),
    [
      'node',
      'app.js',
      '--password',
      '[redacted]',
      '--client-secret=[redacted]',
      '--AUTH=[redacted]',
      '--apikey',
      '[redacted]',
      '--key',
      'server.key',
      'redis://:[redacted]@h:6379',
      '--verbose',
      '--token',
      '--next',
    ],
  );
});

test('a crash-bundle directory that others can write is refused by protect(); the default is per user', (t) => {
  const shared = mkdtempSync(path.join(tmpdir(), 'ns-crash-'));
  t.after(() => rmSync(shared, { recursive: true, force: true }));
  chmodSync(shared, 0o777);
  assert.throws(
    () => new Runtime({ logger: () => {}, postMortem: { dir: shared } }),
    (e: unknown) =>
      (e as { code?: string }).code === 'NS_ERR_INVALID_OPTION' && /others cannot write/.test((e as Error).message),
  );
  assert.equal(RUNTIME_DEFAULTS.postMortem.dir, path.join(tmpdir(), `nodescale-${process.getuid!()}`, 'crash'));
});
