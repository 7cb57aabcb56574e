/**
 * `nodescale doctor`: the machine's checks as functions of what the kernel says (its files given), the timeout chain
 * read from real balancer configurations (typical and generated), and the command on this machine.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { diagnose } from '../../src/deploy/doctor.ts';
import { renderHaproxy } from '../../src/deploy/haproxy.ts';
import { buildModel } from '../../src/deploy/model.ts';
import { renderNginx } from '../../src/deploy/nginx.ts';
import { checkTimeoutChain } from '../../src/deploy/timeout-chain.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { PLAIN_APP, startRun } from '../helpers/supervisor.ts';

/** What a kernel says, as files: anything not given is missing. */
const kernel = (files: Record<string, string>) => (file: string) => {
  if (!(file in files)) throw Object.assign(new Error(`ENOENT ${file}`), { code: 'ENOENT' });
  return files[file]!;
};
const HEALTHY = {
  '/proc/self/limits': 'Max open files            1048576              1048576              files\n',
  '/proc/sys/net/core/somaxconn': '4096\n',
  '/proc/sys/net/ipv4/tcp_max_syn_backlog': '4096\n',
  '/proc/sys/net/ipv4/ip_local_port_range': '10240\t65535\n',
  '/proc/sys/net/ipv4/tcp_tw_reuse': '1\n',
  '/proc/swaps': 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n',
};

test('doctor: a machine set for many connections passes; each limit that is not says why and the exact fix', () => {
  const healthy = diagnose({ connections: 20_000, workers: 1, read: kernel(HEALTHY) });
  assert.deepEqual(
    healthy.filter((f) => f.severity !== 'ok').map((f) => f.check),
    [],
  );
  const poor = diagnose({
    connections: 20_000,
    workers: 64,
    read: kernel({
      ...HEALTHY,
      '/proc/self/limits': 'Max open files            1024                 4096                 files\n',
      '/proc/sys/net/core/somaxconn': '16\n',
      '/proc/swaps': `${HEALTHY['/proc/swaps']}/swapfile file 1048572 0 -2\n`,
      '/sys/fs/cgroup/cpu.max': '200000 100000\n',
    }),
  });
  const by = Object.fromEntries(poor.map((f) => [f.check, f]));
  assert.equal(by['open files']!.severity, 'fail');
  assert.match(by['open files']!.found, /hard limit 4096/);
  assert.match(by['open files']!.fix!, /^LimitNOFILE=65536/);
  assert.equal(by['net.core.somaxconn']!.severity, 'fail');
  assert.match(by['net.core.somaxconn']!.why, /backlog of 511/);
  assert.equal(
    by['net.core.somaxconn']!.fix,
    "echo 'net.core.somaxconn = 4096' >> /etc/sysctl.d/60-nodescale.conf && sysctl --system",
  );
  assert.equal(by['swap']!.severity, 'warn');
  assert.equal(by['CPUs for the workers']!.severity, 'warn');
  assert.match(by['CPUs for the workers']!.found, /64 worker\(s\), \d+ usable CPU\(s\) \(cgroup quota 2\)/);
  // A container's memory limit under the workers' heaps: the OOM killer would end them first.
  const tight = diagnose({
    connections: 10,
    workers: 4,
    heapLimitBytes: 2048 * 1024 * 1024,
    read: kernel({ ...HEALTHY, '/sys/fs/cgroup/memory.max': String(2 * 1024 ** 3) }),
  });
  const memory = tight.find((f) => f.check === 'memory for the workers')!;
  assert.equal(memory.severity, 'warn');
  assert.match(
    memory.found,
    /4 worker\(s\) × \(V8's heap limit 2048 MiB \+ 64 MiB\) = 8448 MiB, the cgroup's limit 2048 MiB/,
  );
  assert.equal(
    memory.fix,
    'nodescale run --node-arg=--max-old-space-size=448 (or fewer workers, or a higher memory limit)',
  );
  const roomy = diagnose({
    connections: 10,
    workers: 1,
    heapLimitBytes: 512 * 1024 ** 2,
    read: kernel({ ...HEALTHY, '/sys/fs/cgroup/memory.max': 'max' }),
  });
  assert.equal(
    roomy.find((f) => f.check === 'memory for the workers'),
    undefined,
    'no limit, no finding',
  );
  // Without /proc (not Linux, or hidden): said, not guessed.
  const blind = diagnose({ connections: 10, workers: 1, read: kernel({}) });
  assert.match(blind.find((f) => f.check === 'open files')!.found, /cannot read/);
});

const TYPICAL_NGINX = `events {}
http {
  upstream app { server 10.0.0.11:3000; keepalive 16; }
  server { listen 80; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`;

test('the timeout chain: a typical nginx configuration races Node; the generated ones do not; a cloud balancer in front is checked too', () => {
  const node = { nodeKeepAliveMs: 5000, nodeRequestTimeoutMs: 30_000 };
  const typical = checkTimeoutChain({
    text: TYPICAL_NGINX,
    kind: 'nginx',
    ...node,
    front: { name: 'alb', idleMs: 60_000 },
  });
  const race = typical.find((f) => f.check === 'idle: nginx → Node')!;
  assert.equal(race.severity, 'fail');
  assert.match(race.found, /60 s, Node 5 s/);
  assert.match(race.fix!, /^keepalive_timeout 4s; in the upstream block/);
  // nginx's default client keepalive_timeout (75 s) outlives the ALB's 60 s: that hop holds.
  assert.equal(typical.find((f) => f.check === 'idle: alb → nginx')!.severity, 'ok');
  for (const kind of ['nginx', 'haproxy'] as const) {
    const model = buildModel({ upstreams: ['10.0.0.11:3000'] });
    const text = kind === 'nginx' ? renderNginx(model) : renderHaproxy(model);
    const findings = checkTimeoutChain({ text, kind, ...node, front: { name: 'alb', idleMs: 60_000 } });
    assert.deepEqual(
      findings.filter((f) => f.severity !== 'ok').map((f) => f.check),
      [],
      `${kind}: ${JSON.stringify(findings)}`,
    );
  }
  // haproxy has no idle timeout for server connections: what keeps it off the race is http-reuse safe (its default),
  // not pool-purge-delay; the throughput guides' always races (test/deploy/deploy.test.ts sees its 502s).
  const always = checkTimeoutChain({
    text: `defaults\n  mode http\n  http-reuse always\n  timeout server 60s\nbackend app\n  server a 10.0.0.11:3000 pool-purge-delay 1s\n`,
    kind: 'haproxy',
    ...node,
  }).find((f) => f.check === 'idle: haproxy → Node')!;
  assert.equal(always.severity, 'fail');
  assert.match(always.found, /http-reuse always/);
  assert.equal(always.fix, 'http-reuse safe in the defaults section (nodescale deploy haproxy writes it)');
  const byDefault = checkTimeoutChain({ text: 'defaults\n  mode http\n', kind: 'haproxy', ...node });
  assert.equal(byDefault.find((f) => f.check === 'idle: haproxy → Node')!.severity, 'ok');
  assert.throws(
    () => checkTimeoutChain({ text: 'defaults\n  http-reuse sometimes\n', kind: 'haproxy', ...node }),
    /NS_ERR_DOCTOR_PROXY|would not read: sometimes/,
  );
  // An idle timeout in front longer than the proxy's: that hop races.
  const front = checkTimeoutChain({
    text: TYPICAL_NGINX,
    kind: 'nginx',
    ...node,
    front: { name: 'alb', idleMs: 90_000 },
  });
  assert.equal(front.find((f) => f.check === 'idle: alb → nginx')!.severity, 'fail');
  // Node's own default requestTimeout (300 s) outlives the proxy's 60 s read: a warning with the fix.
  const slow = checkTimeoutChain({
    text: TYPICAL_NGINX,
    kind: 'nginx',
    nodeKeepAliveMs: 5000,
    nodeRequestTimeoutMs: 300_000,
  });
  assert.equal(slow.find((f) => f.check === 'request time: nginx → Node')!.severity, 'warn');
});

test('nodescale doctor on this machine, and with a proxy file: findings as JSON, exit 1 only on a failure; bad input exit 2', async () => {
  const ran = await runCli(['doctor', '--json', '-c', '100']);
  const report = JSON.parse(ran.stdout) as { ok: boolean; findings: { check: string; severity: string }[] };
  assert.equal(ran.code, report.ok ? 0 : 1);
  assert.ok(report.findings.some((f) => f.check === 'net.core.somaxconn'));
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-doctor-'));
  try {
    const file = path.join(dir, 'nginx.conf');
    writeFileSync(file, TYPICAL_NGINX);
    const chain = await runCli(['doctor', '--json', '-c', '100', '--proxy', file]);
    const findings = (JSON.parse(chain.stdout) as { findings: { check: string; severity: string }[] }).findings;
    assert.equal(findings.find((f) => f.check === 'idle: nginx → Node')?.severity, 'fail');
    assert.equal(chain.code, 1);
    const missing = await runCli(['doctor', '--proxy', path.join(dir, 'none.conf')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error NS_ERR_DOCTOR_PROXY: --proxy .*none\.conf: ENOENT\n$/);
    const bad = await runCli(['doctor', '--idle-timeout', 'alb']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /NS_ERR_INVALID_OPTION: --idle-timeout must be NAME=DURATION/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench warns when -c is more than the open-file limit lets it open', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  // Not spawnSync: the server answering it runs on this test's event loop.
  const bench = (connections: number) =>
    new Promise<{ status: number; stderr: string }>((resolve) => {
      const args = [BIN, 'bench', url, '-c', String(connections), '-d', '300ms'];
      execFile(
        'bash',
        ['-c', 'ulimit -n 512 && exec "$0" "$@"', process.execPath, ...args],
        { timeout: 60_000 },
        (error, _out, stderr) => resolve({ status: error === null ? 0 : Number(error.code), stderr }),
      );
    });
  const over = await bench(600);
  assert.match(over.stderr, /bench: warning: -c 600 is more than this process may open \(open files: 512\)/);
  const under = await bench(16);
  assert.equal(under.status, 0, under.stderr);
  assert.doesNotMatch(under.stderr, /warning/);
});

test("doctor --name APP checks the chain against the timeouts the app's workers have now, read through its supervisor", async (t) => {
  type Report = { ok: boolean; findings: { check: string; severity: string; found: string }[] };
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-doctor-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, TYPICAL_NGINX);
  // keepAliveTimeout set after listen(), to 65 s: nginx's 60 s idle no longer races it.
  const run = startRun(t, ['-w', '2'], { APP_KEEP_ALIVE_MS: '65000' }, PLAIN_APP);
  await run.waitFor(/2 worker\(s\) ready/);
  const ran = await runCli(['doctor', '--json', '-c', '100', '--name', run.name, '--proxy', file]);
  const report = JSON.parse(ran.stdout) as Report;
  const live = report.findings.find((f) => f.check === `Node's timeouts: ${run.name}`)!;
  assert.equal(live.severity, 'ok');
  assert.match(
    live.found,
    /^2 of 2 workers, 127\.0\.0\.1:\d+: keepAliveTimeout 65 s.*, headersTimeout 60 s, requestTimeout 300 s$/,
  );
  assert.equal(report.findings.find((f) => f.check === 'idle: nginx → Node')!.severity, 'ok');
  // A cloud balancer straight in front of the app: its 60 s idle under the app's 65 s.
  const alb = JSON.parse(
    (await runCli(['doctor', '--json', '--name', run.name, '--idle-timeout', 'alb=60s'])).stdout,
  ) as Report;
  assert.equal(alb.findings.find((f) => f.check === 'idle: alb → Node')!.severity, 'ok');
  run.kill('SIGTERM');
  await run.exited;

  // Node's default (5 s) under the same nginx races; workers started without the preload say nothing: a warning.
  const plain = startRun(t, ['-w', '1'], {}, PLAIN_APP);
  await plain.waitFor(/1 worker\(s\) ready/);
  const raced = JSON.parse(
    (await runCli(['doctor', '--json', '--name', plain.name, '--proxy', file])).stdout,
  ) as Report;
  assert.equal(raced.findings.find((f) => f.check === 'idle: nginx → Node')!.severity, 'fail');
  const albRaced = JSON.parse(
    (await runCli(['doctor', '--json', '--name', plain.name, '--idle-timeout', 'alb=60s'])).stdout,
  ) as Report;
  assert.equal(albRaced.findings.find((f) => f.check === 'idle: alb → Node')!.severity, 'fail');
  plain.kill('SIGTERM');
  await plain.exited;
  const silent = startRun(t, ['-w', '1', '--no-http-drain'], {}, PLAIN_APP);
  await silent.waitFor(/1 worker\(s\) ready/);
  const unread = JSON.parse((await runCli(['doctor', '--json', '--name', silent.name])).stdout) as Report;
  const said = unread.findings.find((f) => f.check === `Node's timeouts: ${silent.name}`)!;
  assert.equal(said.severity, 'warn');
  assert.match(said.found, /1 of 1 workers did not say/);
  silent.kill('SIGTERM');
  await silent.exited;

  const both = await runCli(['doctor', '--name', silent.name, '--keep-alive-timeout', '5s']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^error NS_ERR_USAGE: --name reads the app's own timeouts/);
  const nobody = await runCli(['doctor', '--name', 'nobody-runs-this']);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /NS_ERR_SUPERVISOR_UNREACHABLE/);
});
