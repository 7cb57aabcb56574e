import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { waitUntil } from '../helpers/wait.ts';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AdminClient } from '../../src/socket/client.ts';
import { NodescaleError } from '../../src/errors.ts';
import { createRuntime, protect } from '../../src/protect/protect.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { startFixture } from '../helpers/child.ts';
import { tempDir } from '../helpers/temp.ts';

const TLS = new URL('../fixtures/tls/', import.meta.url).pathname;
const pem = (name: string) => readFileSync(path.join(TLS, name), 'utf8');
const TOKEN = 'correct-horse-battery-staple-42';
const code = (expected: string) => (e: unknown) => e instanceof NodescaleError && e.code === expected;
const quiet = { shutdown: false, postMortem: false, logger: () => {} } as const;

function adminFixture(t: Parameters<typeof startFixture>[0], admin: object, extra: object = {}) {
  return startFixture(t, 'protected-server.ts', {
    NS_TEST_OPTIONS: JSON.stringify({ sampleIntervalMs: 100, ...extra, admin }),
    NS_TEST_SECRET: 'hunter2-do-not-leak',
  });
}

test('Unix socket: 0700 directory, 0600 socket; commands answer; every command is audited', async (t) => {
  const dir = path.join(tempDir(t, 'ns-admin-'), 'sockets');
  const socketPath = path.join(dir, 'api.sock');
  const audit = path.join(path.dirname(dir), 'audit.log');
  const server = await adminFixture(t, { socketPath, auditLog: audit });
  await server.waitFor((e) => e.msg === 'admin console listening');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(socketPath).mode & 0o777, 0o600);

  const client = await AdminClient.connect(socketPath);
  t.after(() => client.close());
  assert.deepEqual(Object.keys((await client.request('ping')) as object), ['pong', 'time']);
  const info = (await client.request('info')) as { pid: number; listening: string };
  assert.equal(info.pid, server.pid);
  assert.match(info.listening, /^127\.0\.0\.1:\d+$/);
  await server.waitFor((e) => e.event === 'sample');
  const stats = (await client.request('stats')) as { sample: { eventLoop: object }; readiness: string };
  assert.ok('delayP99Ms' in stats.sample.eventLoop);
  assert.equal(stats.readiness, 'ready');
  assert.deepEqual(await client.request('instrument', { on: false }), { instrumented: false });
  assert.deepEqual(await client.request('instrument', { on: true }), { instrumented: true });
  const report = JSON.stringify(await client.request('report'));
  assert.doesNotMatch(report, /hunter2-do-not-leak/, 'environment values redacted');
  await assert.rejects(client.request('eval', { code: 'process.exit()' }), code('NS_ERR_ADMIN_UNKNOWN_COMMAND'));
  await assert.rejects(client.request('instrument', { on: 'yes' }), code('NS_ERR_INVALID_OPTION'));

  // watch streams samples until unwatch.
  const events: unknown[] = [];
  const watchId = client.nextId;
  const watching = client.request('watch', {}, { onEvent: (e) => events.push(e) });
  await waitUntil(() => events.length >= 2, 'two samples were streamed');
  await client.request('unwatch', { id: watchId });
  await watching;
  assert.ok(events.length >= 2, `samples streamed: ${events.length}`);

  // log-requests streams one entry per completed request.
  const logged: { method: string; url: string; status: number; ms: number }[] = [];
  const logId = client.nextId;
  const logging = client.request('log-requests', {}, { onEvent: (e) => logged.push(e as (typeof logged)[number]) });
  // Commands on one connection start in order: once ping is answered, log-requests is subscribed.
  await client.request('ping');
  assert.equal((await fetch(`${server.url}slow?ms=5`)).status, 200);
  await waitUntil(() => logged.length === 1, 'the request was logged');
  await client.request('unwatch', { id: logId });
  await logging;
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.url, '/slow?ms=5');
  assert.equal(logged[0]!.status, 200);
  assert.ok(logged[0]!.ms >= 4);

  const lines = readFileSync(audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.cmd === 'instrument' && l.ok === true && l.args.on === false));
  assert.ok(lines.some((l) => l.cmd === 'eval' && l.ok === false && l.error === 'NS_ERR_ADMIN_UNKNOWN_COMMAND'));
  assert.equal(statSync(audit).mode & 0o777, 0o600);
});

test('the console CLI: stats --json, a heap snapshot that parses, a CPU profile with nodes and samples', async (t) => {
  const dir = tempDir(t, 'ns-admin-');
  const socketPath = path.join(dir, 's', 'api.sock');
  const server = await adminFixture(t, { socketPath });
  await server.waitFor((e) => e.msg === 'admin console listening');
  const stats = await runCli(['console', socketPath, 'stats', '--json']);
  assert.equal(stats.code, 0, stats.stderr);
  assert.equal(JSON.parse(stats.stdout).readiness, 'ready');
  // `samples N` as its help says (args: count), and --count N.
  await server.waitFor((e) => e.event === 'sample');
  for (const form of [
    ['samples', '1'],
    ['samples', '--count', '1'],
  ]) {
    const samples = await runCli(['console', socketPath, ...form, '--json']);
    assert.equal(samples.code, 0, samples.stderr);
    assert.equal((JSON.parse(samples.stdout) as unknown[]).length, 1, form.join(' '));
  }
  assert.equal((await runCli(['console', socketPath, 'samples', 'many'])).code, 2);

  const heapFile = path.join(dir, 'h.heapsnapshot');
  const heap = await runCli(['console', socketPath, 'heap-snapshot', '-o', heapFile]);
  assert.equal(heap.code, 0, heap.stderr);
  assert.match(heap.stdout, /^wrote .*h\.heapsnapshot \(\d/);
  const snapshot = JSON.parse(readFileSync(heapFile, 'utf8'));
  assert.ok(snapshot.snapshot.meta.node_fields.includes('self_size'));
  assert.equal(statSync(heapFile).mode & 0o777, 0o600);

  const profileFile = path.join(dir, 'p.cpuprofile');
  // Some work for the profiler to see.
  const busy = fetch(`${server.url}block?ms=300`);
  const profile = await runCli(['console', socketPath, 'cpu-profile', '--seconds', '1s', '-o', profileFile]);
  await busy;
  assert.equal(profile.code, 0, profile.stderr);
  const cpu = JSON.parse(readFileSync(profileFile, 'utf8'));
  assert.ok(cpu.nodes.length > 1 && cpu.samples.length > 10 && cpu.timeDeltas.length === cpu.samples.length);
  assert.ok(
    cpu.nodes.some((n: { callFrame: { url: string } }) => n.callFrame.url.endsWith('protected-server.ts')),
    'the busy route shows up',
  );
  const flame = readFileSync(path.join(dir, 'p.svg'), 'utf8');
  assert.match(profile.stdout, /flame graph .*p\.svg/);
  assert.match(flame, /<title>[^<]*protected-server\.ts/, 'the flame graph names the busy route');

  const bad = await runCli(['console', socketPath, 'frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /NS_ERR_USAGE: console: unknown command "frobnicate"/);

  // Output that cannot be written: one line with a code, no stack, no file left behind.
  const missing = await runCli(['console', socketPath, 'heap-snapshot', '-o', '/no-such-dir/x.heapsnapshot']);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /^error NS_ERR_OUTPUT: cannot write -o \/no-such-dir\/x\.heapsnapshot: no directory \/no-such-dir\n$/,
  );
  const intoDir = await runCli(['console', socketPath, 'heap-snapshot', '-o', dir, '--json']);
  assert.equal(intoDir.code, 0, intoDir.stderr);
  assert.equal(path.dirname(JSON.parse(intoDir.stdout).file), dir, 'a directory gets a file of its own inside');
  const before = readdirSync(dir).length;
  const tooLong = await runCli([
    'console',
    socketPath,
    'cpu-profile',
    '--seconds',
    '1000',
    '-o',
    path.join(dir, 'never.cpuprofile'),
  ]);
  assert.equal(tooLong.code, 2, tooLong.stderr);
  assert.match(tooLong.stderr, /NS_ERR_INVALID_OPTION: seconds must be a number of seconds above 0, at most 300/);
  assert.equal(readdirSync(dir).length, before, 'a refused profile leaves no file');
  rmSync(dir, { recursive: true, force: true });
});

test('shutdown from the console drains in-flight requests, then the process exits 0', async (t) => {
  const socketPath = path.join(tempDir(t, 'ns-admin-'), 's', 'api.sock');
  const server = await adminFixture(t, { socketPath });
  await server.waitFor((e) => e.msg === 'admin console listening');
  const slow = fetch(`${server.url}slow?ms=600`);
  await server.waitFor((e) => e.event === 'slow-started');
  const run = await runCli(['console', socketPath, 'shutdown', '--grace', '5s', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { shuttingDown: true, inFlight: 1 });
  const response = await slow;
  assert.equal(response.status, 200);
  assert.equal(await response.text(), 'slow');
  assert.equal((await server.exited).code, 0);
});

test('TCP: TLS and a token; no token and a wrong token are refused, slowly; a guesser does not lock the operator out', async (t) => {
  const server = await adminFixture(t, {
    noSocket: true,
    token: TOKEN,
    tcp: { port: 0, tls: { key: pem('server.key'), cert: pem('server.pem') } },
  });
  const listening = await server.waitFor((e) => e.msg === 'admin console listening');
  const target = `127.0.0.1:${(listening.tcp as { port: number }).port}`;
  const ca = pem('ca.pem');

  const anonymous = await AdminClient.connect(target, { ca });
  await assert.rejects(
    anonymous.request('ping'),
    (e: unknown) => code('NS_ERR_ADMIN_AUTH')(e) && /authentication required/.test((e as Error).message),
  );
  // Nor the inspector, nor the stalls: no command before the token.
  for (const cmd of ['inspect', 'stalls']) {
    const another = await AdminClient.connect(target, { ca });
    await assert.rejects(another.request(cmd), (e: unknown) => code('NS_ERR_ADMIN_AUTH')(e));
    another.close();
  }
  // The CLI says which flag is missing, not the protocol's words (before the guesses: they exhaust the budget).
  const noToken = await runCli(['console', target, 'ping', '--ca', path.join(TLS, 'ca.pem')]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /NS_ERR_ADMIN_AUTH: this admin console requires a token: pass --token-file FILE/);
  // Guesses from the operator's own address, over the minute's budget: wrong ones are refused (rate limited past the
  // budget), and the right token is still accepted at once, from the same address.
  const guesses = await Promise.allSettled(
    Array.from({ length: 34 }, () => AdminClient.connect(target, { ca, token: 'wrong-token-wrong-token' })),
  );
  const codes = guesses.map((g) => (g.status === 'rejected' ? (g.reason as { code?: string }).code : 'accepted'));
  assert.ok(
    codes.every((c) => c === 'NS_ERR_ADMIN_AUTH' || c === 'NS_ERR_ADMIN_RATE_LIMITED' || c === 'NS_ERR_ADMIN_CONNECT'),
    codes.join(),
  );
  assert.ok(codes.includes('NS_ERR_ADMIN_RATE_LIMITED'), `over 30 failures in a minute: ${codes.join()}`);
  const client = await AdminClient.connect(target, { ca, token: TOKEN });
  t.after(() => client.close());
  assert.equal(((await client.request('ping')) as { pong: boolean }).pong, true);
  // Without the CA the server's certificate is not trusted.
  await assert.rejects(AdminClient.connect(target, { token: TOKEN }), code('NS_ERR_ADMIN_CONNECT'));
  const noCa = await runCli(['console', target, 'ping', '--token', TOKEN]);
  assert.equal(noCa.code, 1);
  assert.match(noCa.stderr, /NS_ERR_ADMIN_CONNECT: .*pass that CA as --ca FILE/);
  assert.ok(server.events.some((e) => e.msg === 'admin console: failed authentication'));
});

test('before authentication: a small line limit, a fixed deadline, a bounded number of connections', async (t) => {
  const server = await adminFixture(t, {
    noSocket: true,
    token: TOKEN,
    tcp: { port: 0, tls: { key: pem('server.key'), cert: pem('server.pem') } },
    // The deadline shortened so that the test does not wait 10 s for it.
    authDeadlineMs: 2000,
  });
  const listening = await server.waitFor((e) => e.msg === 'admin console listening');
  const port = (listening.tcp as { port: number }).port;
  const ca = pem('ca.pem');
  const open = (): Promise<tls.TLSSocket> =>
    new Promise((resolve, reject) => {
      // Reading what comes (resume) lets the server's end arrive, and 'close' fire.
      const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () =>
        resolve(socket.resume()),
      );
      socket.on('error', reject);
    });
  const closed = (socket: tls.TLSSocket) =>
    new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  // 5 KiB without a newline, before auth: refused and closed (after auth the limit is 1 MiB).
  const long = await open();
  long.write('x'.repeat(5 * 1024));
  await closed(long);
  // 20 silent connections: the oldest are closed as new ones come, 16 stay open at most.
  const silent = await Promise.all(Array.from({ length: 20 }, () => open()));
  await Promise.all(silent.slice(0, 4).map(closed));
  // The operator still gets in.
  const client = await AdminClient.connect(`127.0.0.1:${port}`, { ca, token: TOKEN });
  t.after(() => client.close());
  assert.equal(((await client.request('ping')) as { pong: boolean }).pong, true);
  // A silent connection is closed at the deadline anyway (authDeadlineMs after it connected).
  await Promise.all(silent.slice(4).map(closed));
  assert.ok(silent.every((s) => s.destroyed));
});

test('TCP with client certificates: a verified client needs no token; one without a certificate is refused', async (t) => {
  const server = await adminFixture(t, {
    noSocket: true,
    tcp: { port: 0, tls: { key: pem('server.key'), cert: pem('server.pem'), ca: pem('ca.pem'), requestCert: true } },
  });
  const listening = await server.waitFor((e) => e.msg === 'admin console listening');
  const target = `localhost:${(listening.tcp as { port: number }).port}`;
  const client = await AdminClient.connect(target, {
    ca: pem('ca.pem'),
    cert: pem('client.pem'),
    key: pem('client.key'),
  });
  t.after(() => client.close());
  assert.equal(((await client.request('ping')) as { pong: boolean }).pong, true);
  await assert.rejects(
    (async () => {
      const anonymous = await AdminClient.connect(target, { ca: pem('ca.pem') });
      await anonymous.request('ping');
    })(),
    code('NS_ERR_ADMIN_CONNECT'),
  );
});

test('insecure setups are refused: plain TCP, TCP without authentication, a socket directory others can reach', async () => {
  assert.throws(
    () => createRuntime({ ...quiet, admin: { tcp: { port: 0 } as never } }),
    (e: unknown) => code('NS_ERR_ADMIN_INSECURE')(e) && /refuses plain TCP/.test((e as Error).message),
  );
  assert.throws(
    () =>
      createRuntime({
        ...quiet,
        admin: { tcp: { port: 0, tls: { key: pem('server.key'), cert: pem('server.pem') } } },
      }),
    (e: unknown) => code('NS_ERR_ADMIN_INSECURE')(e) && /without authentication/.test((e as Error).message),
  );
  assert.throws(() => createRuntime({ ...quiet, admin: { token: 'short' } }), code('NS_ERR_INVALID_OPTION'));
  // The console resolves its own options, typos included (they were passed through unchecked).
  assert.throws(() => createRuntime({ ...quiet, admin: { sockePath: '/tmp/x.sock' } as never }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option admin.sockePath; did you mean admin.socketPath?',
  });
  assert.throws(
    () =>
      createRuntime({ ...quiet, admin: { tcp: { port: 0, tls: { key: 'k', cert: 'c', requestCrt: true } } } as never }),
    { message: 'unknown option admin.tcp.tls.requestCrt; did you mean admin.tcp.tls.requestCert?' },
  );
  const open = path.join(mkdtempSync(path.join(tmpdir(), 'ns-admin-')), 'open');
  mkdirSync(open, { mode: 0o755 });
  chmodSync(open, 0o755);
  // Refused by the constructor (protect() throws), not logged once the app runs without its console.
  assert.throws(
    () => createRuntime({ ...quiet, admin: { socketPath: path.join(open, 'api.sock') } }),
    (e: unknown) => code('NS_ERR_ADMIN_INSECURE')(e) && /must be a directory of mode 0700/.test((e as Error).message),
  );
  assert.throws(
    () =>
      protect(http.createServer(), { ...quiet, admin: { socketPath: path.join(tmpdir(), `ns-${process.pid}.sock`) } }),
    code('NS_ERR_ADMIN_INSECURE'),
  );
  rmSync(path.dirname(open), { recursive: true, force: true });
});

test('the client refuses a socket whose mode lets others in', async (t) => {
  const socketPath = path.join(tempDir(t, 'ns-admin-'), 'loose.sock');
  const loose = net.createServer(() => {}).listen(socketPath);
  await new Promise((r) => loose.once('listening', r));
  t.after(() => loose.close());
  chmodSync(socketPath, 0o666);
  await assert.rejects(
    AdminClient.connect(socketPath),
    (e: unknown) => code('NS_ERR_ADMIN_INSECURE')(e) && /mode is 666/.test((e as Error).message),
  );
});

test('malformed, oversized and half-open connections are answered or closed; the app keeps serving', async (t) => {
  const socketPath = path.join(tempDir(t, 'ns-admin-'), 's', 'api.sock');
  const server = await adminFixture(t, { socketPath });
  await server.waitFor((e) => e.msg === 'admin console listening');
  const exchange = (payload: string | Buffer, wait = 300) =>
    new Promise<string>((resolve) => {
      const socket = net.connect(socketPath, () => socket.write(payload));
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (c) => (got += c));
      socket.on('error', () => {});
      setTimeout(() => {
        socket.destroy();
        resolve(got);
      }, wait);
    });
  assert.match(await exchange('not json\n'), /"code":"NS_ERR_ADMIN_BAD_MESSAGE","message":"not JSON"/);
  assert.match(
    await exchange('[1,2]\n{"id":"x","cmd":"ping"}\n'),
    /a message must be a JSON object[\s\S]*integer \\"id\\"/,
  );
  assert.match(
    await exchange(`{"id":1,"cmd":"ping","args":{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}}\n`, 1000),
    /limited to 1048576 bytes/,
  );
  await exchange('{"id":1,"cmd":"pi'); // half a message, then gone
  assert.equal((await fetch(server.url)).status, 200, 'the app still serves');
  assert.match(await exchange('{"id":7,"cmd":"ping"}\n'), /"id":7,"ok":true/);
});

test('eval exists only when the app allows it, only on the Unix socket, and is audited without its code', async (t) => {
  const dir = tempDir(t, 'ns-admin-');
  const audit = path.join(dir, 'audit.log');
  const socketPath = path.join(dir, 's', 'api.sock');
  const server = await adminFixture(t, {
    socketPath,
    auditLog: audit,
    allowEval: true,
    token: TOKEN,
    tcp: { port: 0, tls: { key: pem('server.key'), cert: pem('server.pem') } },
  });
  const listening = await server.waitFor((e) => e.msg === 'admin console listening');
  const local = await AdminClient.connect(socketPath, { token: TOKEN });
  t.after(() => local.close());
  assert.deepEqual(await local.request('eval', { code: '6 * 7' }), { result: '42' });
  assert.deepEqual(await local.request('eval', { code: 'Promise.resolve(process.pid)' }), {
    result: String(server.pid),
  });
  const remote = await AdminClient.connect(`127.0.0.1:${(listening.tcp as { port: number }).port}`, {
    ca: pem('ca.pem'),
    token: TOKEN,
  });
  t.after(() => remote.close());
  await assert.rejects(
    remote.request('eval', { code: '1' }),
    (e: unknown) => code('NS_ERR_ADMIN_INSECURE')(e) && /never allowed over TCP/.test((e as Error).message),
  );
  const entries = readFileSync(audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(entries.find((e) => e.cmd === 'eval' && e.ok)?.args, { codeLength: 5 });
  assert.doesNotMatch(readFileSync(audit, 'utf8'), /6 \* 7/);

  // Without allowEval, eval does not exist.
  const plain = await adminFixture(t, { socketPath: path.join(dir, 't', 'api.sock') });
  await plain.waitFor((e) => e.msg === 'admin console listening');
  const client = await AdminClient.connect(path.join(dir, 't', 'api.sock'));
  t.after(() => client.close());
  await assert.rejects(client.request('eval', { code: '1' }), code('NS_ERR_ADMIN_UNKNOWN_COMMAND'));
});

test('the interactive console on a terminal: the q that stops a watch does not stay in the next command', async (t) => {
  const socketPath = path.join(tempDir(t, 'ns-admin-'), 'sockets', 'api.sock');
  const server = await adminFixture(t, { socketPath });
  await server.waitFor((e) => e.msg === 'admin console listening');
  // script(1) gives the console a real terminal (a pty): the q arrives as a key press, as a user types it.
  const command = [process.execPath, BIN, 'console', socketPath].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (out += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const seen = (pattern: RegExp, what: string) =>
    waitUntil(() => pattern.test(out), what, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; the terminal showed: ${JSON.stringify(out.slice(-600))}`);
    });
  await seen(/nodescale> /, 'the prompt');
  child.stdin.write('watch\r');
  await seen(/q or Ctrl-C stop[\s\S]*event-loop p99/, 'the watch draws');
  child.stdin.write('q');
  await seen(/nodescale> [\s\S]*nodescale> /, 'the prompt again');
  const before = out.length;
  child.stdin.write('ping\r');
  await seen(/pong/, 'ping answers');
  child.stdin.write('exit\r');
  await exited;
  assert.doesNotMatch(out.slice(before), /unknown command/, out.slice(before));
});
