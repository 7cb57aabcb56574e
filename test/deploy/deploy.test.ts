/**
 * `nodescale deploy nginx|haproxy` against the real servers (Debian's nginx 1.22 and haproxy 2.6, private instances
 * on free ports): every generated configuration passes the server's own check, and requests through it reach every
 * upstream, compressed and with static files where asked; what would race Node's keep-alive is refused.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { test, type TestContext } from 'node:test';
import { buildModel, type BalancerOptions } from '../../src/deploy/model.ts';
import { renderHaproxy } from '../../src/deploy/haproxy.ts';
import { renderNginx } from '../../src/deploy/nginx.ts';
import { checkBalancerConfig, startBalancer, type BalancerKind } from '../../src/servers/balancers.ts';
import { freePort } from '../../src/servers/process.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { runBin, runCli } from '../helpers/cli.ts';
import { closedPort } from '../helpers/servers.ts';
import { startRun } from '../helpers/supervisor.ts';
import { waitUntil } from '../helpers/wait.ts';
import { startDelayRelay } from '../helpers/delay-relay.ts';

const TLS = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url).pathname;
const render = (kind: BalancerKind, options: BalancerOptions) =>
  (kind === 'nginx' ? renderNginx : renderHaproxy)(buildModel(options));

/** A Node instance standing for a host: it answers with its own port; /big is 8 KiB of text; /readyz is 200. */
async function upstream(t: TestContext): Promise<number> {
  const server = http.createServer((req, res) => {
    const port = (server.address() as { port: number }).port;
    if (req.url === '/big') return res.writeHead(200, { 'content-type': 'text/plain' }).end('nodescale '.repeat(820));
    res.writeHead(200, { 'content-type': 'text/plain' }).end(String(port));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    http
      .get(url, { headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

test("every generated configuration passes the server's own check (nginx -t, haproxy -c)", () => {
  const publicDir = mkdtempSync(path.join(tmpdir(), 'ns-static-'));
  try {
    const variants: [BalancerKind, BalancerOptions][] = [
      ['nginx', { upstreams: ['127.0.0.1:3001', '127.0.0.1:3002'] }],
      ['nginx', { upstreams: ['127.0.0.1:3001'], gzip: true, static: [{ prefix: '/assets', dir: publicDir }] }],
      [
        'nginx',
        {
          upstreams: ['[::1]:3001', 'localhost:3002'],
          tls: [{ serverName: 'localhost', cert: TLS('server.pem'), key: TLS('server.key') }],
          hsts: true,
          maxConnsPerUpstream: 64,
        },
      ],
      ['haproxy', { upstreams: ['127.0.0.1:3001', '127.0.0.1:3002'], gzip: true, maxConnsPerUpstream: 64 }],
      ['haproxy', { upstreams: ['127.0.0.1:3001'], keepAliveTimeoutMs: 1000, readTimeoutMs: 1500 }],
    ];
    for (const [kind, options] of variants) {
      const verdict = checkBalancerConfig(kind, render(kind, options));
      assert.ok(verdict.ok, `${kind} ${JSON.stringify(options)}: ${verdict.output}`);
    }
  } finally {
    rmSync(publicDir, { recursive: true, force: true });
  }
});

for (const kind of ['nginx', 'haproxy'] as const) {
  test(`${kind} in front of two hosts: requests reach both, text is compressed${kind === 'nginx' ? ", static files are the balancer's" : ''}`, async (t) => {
    const ports = [await upstream(t), await upstream(t)];
    const listen = await freePort();
    const publicDir = mkdtempSync(path.join(tmpdir(), 'ns-static-'));
    chmodSync(publicDir, 0o755); // nginx's workers run as nobody
    writeFileSync(path.join(publicDir, 'app.css'), 'body { color: black; }\n');
    t.after(() => rmSync(publicDir, { recursive: true, force: true }));
    const config = render(kind, {
      upstreams: ports.map((port) => `127.0.0.1:${port}`),
      listen,
      listenHost: '127.0.0.1',
      gzip: true,
      ...(kind === 'nginx' ? { static: [{ prefix: '/assets', dir: publicDir }] } : {}),
    });
    const balancer = await startBalancer(kind, config, listen);
    t.after(() => balancer.stop());
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add((await get(`http://127.0.0.1:${listen}/`)).body.toString());
    assert.deepEqual([...seen].sort(), ports.map(String).sort());
    const big = await get(`http://127.0.0.1:${listen}/big`, { 'accept-encoding': 'gzip' });
    assert.equal(big.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(big.body).toString(), 'nodescale '.repeat(820));
    if (kind === 'nginx') {
      const css = await get(`http://127.0.0.1:${listen}/assets/app.css`);
      assert.equal(css.status, 200);
      assert.equal(css.body.toString(), 'body { color: black; }\n');
      // Cached by clients: nginx's expires (max-age) and the public directive.
      assert.match(css.headers['cache-control'] ?? '', /max-age=3600.*public/);
    }
  });
}

test("deploy refuses what would race Node's keep-alive, and bad input, with a code and nothing written", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-deploy-'));
  try {
    const out = path.join(dir, 'nginx.conf');
    const race = await runCli([
      'deploy',
      'nginx',
      '--upstream',
      '127.0.0.1:3001',
      '--keep-alive-timeout',
      '5s',
      '--upstream-idle-timeout',
      '60s',
      '--out',
      out,
    ]);
    assert.equal(race.code, 2);
    assert.match(race.stderr, /^error NS_ERR_DEPLOY_KEEPALIVE_RACE: .*60000 ms.*5000 ms/);
    assert.equal(existsSync(out), false, 'nothing written');
    const cases: [string[], RegExp][] = [
      [['deploy', 'nginx', '--upstream', 'no-port'], /NS_ERR_INVALID_OPTION: --upstream must be HOST:PORT/],
      [['deploy', 'nginx'], /NS_ERR_INVALID_OPTION: --upstream must be at least one HOST:PORT/],
      [['deploy', 'caddy', '--upstream', '127.0.0.1:1'], /NS_ERR_USAGE: deploy: unknown balancer "caddy"/],
      [
        [
          'deploy',
          'nginx',
          '--upstream',
          '127.0.0.1:1',
          '--tls-cert',
          TLS('server.pem'),
          '--tls-key',
          TLS('client.key'),
        ],
        /NS_ERR_DEPLOY_TLS: .*client\.key is not the key of/,
      ],
      [
        [
          'deploy',
          'nginx',
          '--upstream',
          '127.0.0.1:1',
          '--tls-cert',
          path.join(dir, 'none.pem'),
          '--tls-key',
          TLS('server.key'),
        ],
        /NS_ERR_DEPLOY_TLS: .*no file/,
      ],
      [['deploy', 'haproxy', '--upstream', '127.0.0.1:1', '--static', `/a=${dir}`], /NS_ERR_DEPLOY_UNSUPPORTED/],
      [
        ['deploy', 'nginx', '--upstream', '127.0.0.1:1', '--from-sweep', path.join(dir, 'none.json')],
        /NS_ERR_DEPLOY_SWEEP/,
      ],
    ];
    for (const [argv, message] of cases) {
      const ran = await runCli([...argv, '--out', out]);
      assert.equal(ran.code, 2, `${argv.join(' ')}: ${ran.stderr}`);
      assert.match(ran.stderr, message);
      assert.equal(ran.stderr.split('\n').length, 2, 'one line');
      assert.equal(existsSync(out), false, 'nothing written');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--from-sweep: the per-upstream connection limit is the knee a sweep found, times the workers', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-deploy-'));
  try {
    const results = path.join(dir, 'results.json');
    writeFileSync(results, JSON.stringify({ knee: { power: { concurrency: 24, throughput: 9000, latencyMs: 2.6 } } }));
    const ran = await runCli([
      'deploy',
      'haproxy',
      '--upstream',
      '127.0.0.1:1',
      '--from-sweep',
      results,
      '--workers-per-upstream',
      '4',
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /maxconn 96\b/);
    const nginx = await runCli(['deploy', 'nginx', '--upstream', '127.0.0.1:1', '--from-sweep', results]);
    assert.match(nginx.stdout, /server 127\.0\.0\.1:1 .*max_conns=24;/);
    writeFileSync(results, JSON.stringify({ knee: { power: null } }));
    const none = await runCli(['deploy', 'nginx', '--upstream', '127.0.0.1:1', '--from-sweep', results]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /NS_ERR_DEPLOY_SWEEP: .*no knee/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A hand-written nginx configuration as it is often seen: upstream keep-alive on, with nginx's 60 s default idle time.
 */
const typicalNginx = (upstreamPort: number, listen: number) => `events {}
http {
  access_log off;
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;

/**
 * A hand-written haproxy configuration as the throughput guides write it: server connections reused by any client
 * (http-reuse always). haproxy's default, safe, does not race: measured, 0 of 120 with or without client keep-alive.
 */
const typicalHaproxy = (upstreamPort: number, listen: number) => `defaults
  mode http
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend web
  bind 127.0.0.1:${listen}
  default_backend app
backend app
  server s1 127.0.0.1:${upstreamPort}
`;

/** POSTs from `clients` clients, each waiting about `spacingMs` (with jitter) between two: the statuses seen. */
async function postsAroundTimeout(url: string, clients: number, perClient: number, spacingMs: number) {
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const status = await new Promise<number>((resolve) => {
          const req = http.request(url, { method: 'POST', agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', () => resolve(0));
          req.end('{"tag":"comet"}');
        });
        statuses.push(status);
        // Just under Node's keep-alive timeout, as the client sees it: the answer reached it a relay's delay after
        // Node's idle timer began, and the next request reaches Node a relay's delay after nginx sends it. Most land
        // after Node closed the connection and before its close reached nginx.
        await new Promise((resolve) => setTimeout(resolve, spacingMs - 50 + Math.random() * 60));
      }
    }),
  );
  return statuses;
}

for (const kind of ['nginx', 'haproxy'] as const) {
  test(`the keep-alive race, observed: a typical ${kind} configuration sends POSTs on connections Node has closed (502s); the generated one does not`, async (t) => {
    // Node's keep-alive shortened (300 ms, no buffer) so the run stays short; 20 ms each way between nginx and Node.
    const KEEP_ALIVE_MS = 300;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.keepAliveTimeoutBuffer = 0;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const relay = await startDelayRelay((server.address() as { port: number }).port, 20);
    t.after(() => relay.close());
    const failures: Record<string, number> = {};
    for (const which of ['typical', 'generated'] as const) {
      const listen = await freePort();
      const config =
        which === 'typical'
          ? (kind === 'nginx' ? typicalNginx : typicalHaproxy)(relay.port, listen)
          : render(kind, {
              upstreams: [`127.0.0.1:${relay.port}`],
              listen,
              listenHost: '127.0.0.1',
              keepAliveTimeoutMs: KEEP_ALIVE_MS,
            });
      const balancer = await startBalancer(kind, config, listen);
      try {
        const statuses = await postsAroundTimeout(`http://127.0.0.1:${listen}/tags`, 4, 30, KEEP_ALIVE_MS);
        failures[which] = statuses.filter((status) => status !== 200).length;
        t.diagnostic(
          `${kind} ${which}: ${failures[which]} of ${statuses.length} POSTs failed (${[...new Set(statuses)].join(', ')})`,
        );
      } finally {
        await balancer.stop();
      }
    }
    assert.ok(failures.typical! > 0, 'the typical configuration must show the race, or this test proves nothing');
    assert.equal(failures.generated, 0);
  });
}

for (const kind of ['nginx', 'haproxy'] as const) {
  test(`${kind} terminates TLS: each name answered with its own certificate (SNI), TLS 1.2+ only, HTTP/2 offered`, async (t) => {
    const port = await upstream(t);
    const listen = await freePort();
    const names = ['a.test', 'b.test'].map((name) => ({
      serverName: name,
      cert: TLS(`${name}.pem`),
      key: TLS(kind === 'haproxy' ? `${name}.pem.key` : `${name}.key`),
    }));
    const balancer = await startBalancer(
      kind,
      render(kind, { upstreams: [`127.0.0.1:${port}`], listen, listenHost: '127.0.0.1', tls: names, hsts: true }),
      listen,
    );
    t.after(() => balancer.stop());
    const ca = readFileSync(TLS('ca.pem'));
    for (const { serverName } of names) {
      const socket = tls.connect({
        port: listen,
        host: '127.0.0.1',
        servername: serverName,
        ca,
        ALPNProtocols: ['h2', 'http/1.1'],
      });
      await once(socket, 'secureConnect');
      assert.equal(socket.getPeerX509Certificate()?.subject, `CN=${serverName}`);
      assert.equal(socket.alpnProtocol, 'h2');
      assert.match(socket.getProtocol() ?? '', /^TLSv1\.[23]$/);
      socket.destroy();
      // And a request through it reaches Node, with HSTS.
      const answer = await new Promise<{ body: string; hsts: string | undefined }>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: listen, servername: serverName, ca, path: '/', agent: false }, (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk));
            res.on('end', () =>
              resolve({ body, hsts: res.headers['strict-transport-security'] as string | undefined }),
            );
          })
          .on('error', reject);
      });
      assert.equal(answer.body, String(port));
      assert.match(answer.hsts ?? '', /max-age=31536000/);
    }
    // TLS 1.1 is refused.
    const old = tls.connect({
      port: listen,
      host: '127.0.0.1',
      servername: 'a.test',
      ca,
      maxVersion: 'TLSv1.1',
      // Security level 0: this OpenSSL offers TLS 1.1 only then (the server is what must refuse it).
      ciphers: 'DEFAULT:@SECLEVEL=0',
      minVersion: 'TLSv1',
    });
    const outcome = await once(old, 'secureConnect').then(
      () => 'connected',
      (error: Error) => error.message,
    );
    old.destroy();
    assert.match(outcome, /protocol version/, 'the balancer refuses TLS 1.1');
  });
}

/** A host that can shed (every answer 503 + Retry-After, as the runtime's overload does) and counts what it got. */
async function host(t: TestContext) {
  const state = { shedding: false, gets: 0, posts: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.method === 'POST') state.posts++;
    else state.gets++;
    if (state.shedding) return res.writeHead(503, { 'retry-after': '1' }).end('shedding');
    res.writeHead(200, { 'content-type': 'text/plain' }).end(String((server.address() as { port: number }).port));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const kill = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  t.after(() => (server.listening ? kill() : undefined));
  return { port, state, kill };
}

/** Two hosts behind the generated configuration of `kind`, stopped after the test. */
async function twoHosts(t: TestContext, kind: BalancerKind) {
  const [a, b] = [await host(t), await host(t)];
  const listen = await freePort();
  const balancer = await startBalancer(
    kind,
    render(kind, { upstreams: [a, b].map((h) => `127.0.0.1:${h.port}`), listen, listenHost: '127.0.0.1' }),
    listen,
  );
  t.after(() => balancer.stop());
  return { a, b, balancer, url: `http://127.0.0.1:${listen}/` };
}

for (const kind of ['nginx', 'haproxy'] as const) {
  test(`${kind}: a shedding host's GETs are retried on the other, its POSTs are not`, async (t) => {
    const { a, b, url } = await twoHosts(t, kind);
    a.state.shedding = true;
    const gets = await Promise.all(Array.from({ length: 40 }, () => get(url)));
    assert.deepEqual(
      gets.map((r) => r.status).filter((s) => s !== 200),
      [],
      'every GET answered by the host that is not shedding',
    );
    const posts: number[] = [];
    for (let i = 0; i < 20; i++)
      posts.push(
        await new Promise<number>((resolve, reject) => {
          http
            .request(url, { method: 'POST', agent: false }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode!));
            })
            .on('error', reject)
            .end('x');
        }),
      );
    // A POST is never sent twice: each reached one host once, and the shedding host's 503 reached its client.
    assert.equal(a.state.posts + b.state.posts, 20, 'no POST sent twice');
    assert.ok(
      posts.every((status) => status === 200 || status === 503),
      `${posts}`,
    );
  });

  test(`${kind}: a host killed under GET load loses no GET, and is marked down`, async (t) => {
    const { a, b, balancer, url } = await twoHosts(t, kind);
    // What was in flight on the killed host, or sent to it, is retried on the other.
    let running = true;
    const statuses: number[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (running)
          statuses.push(
            await get(url).then(
              (r) => r.status,
              () => 0,
            ),
          );
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = balancer.log();
    await a.kill();
    const killed = performance.now();
    const killedAt = statuses.length;
    // Marked down: nginx after max_fails failed attempts (passive), haproxy after fall failed checks (active).
    const down = kind === 'nginx' ? /upstream server temporarily disabled/ : /Server nodescale\/node1 is DOWN/;
    let downAfterMs: number | null = null;
    while (performance.now() - killed < 15_000) {
      if (down.test(balancer.log().slice(before.length))) {
        downAfterMs = performance.now() - killed;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await load;
    t.diagnostic(
      `${kind}: ${statuses.length} GETs, ${killedAt} before the kill; failed: ${statuses.filter((s) => s !== 200).length}; ` +
        `marked down ${downAfterMs === null ? 'never' : `${Math.round(downAfterMs)} ms`} after the kill`,
    );
    assert.notEqual(
      downAfterMs,
      null,
      `the balancer marks the killed host down: ${balancer.log().slice(before.length)}`,
    );
    assert.ok(statuses.length > killedAt, 'GETs went on after the kill');
    assert.ok(a.state.gets > 0 && b.state.gets > 0, 'both hosts served before the kill');
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'no GET failed',
    );
  });
}

for (const kind of ['nginx', 'haproxy'] as const) {
  test(`${kind}: a rolling deploy across two nodescale run hosts under load through it fails no request`, async (t) => {
    const ports = [await closedPort(), await closedPort()];
    const hosts = ports.map((port) =>
      startRun(t, ['-w', '2', '--stability', '300ms', '--probation', '300ms'], { APP_PORT: String(port) }),
    );
    for (const run of hosts) await run.waitFor(/2 worker\(s\) ready/);
    const listen = await freePort();
    const balancer = await startBalancer(
      kind,
      render(kind, { upstreams: ports.map((port) => `127.0.0.1:${port}`), listen, listenHost: '127.0.0.1' }),
      listen,
    );
    t.after(() => balancer.stop());
    let completed = 0;
    const load = runBench(
      { url: `http://127.0.0.1:${listen}/`, connections: 8, durationMs: 5000 },
      { onProgress: (p) => (completed = p.completed) },
    );
    await waitUntil(() => completed > 0, 'the load is running');
    // One host, then the other, as a deployment does.
    for (const run of hosts) {
      const reload = await runBin(['reload', '--name', run.name]);
      assert.equal(reload.code, 0, reload.stderr);
    }
    const result = await load;
    t.diagnostic(`${kind}: ${result.requests.total} requests during two hosts' reloads, ${result.errors.total} failed`);
    assert.ok(result.requests.total > 500, `${result.requests.total} requests`);
    assert.equal(result.errors.total, 0, JSON.stringify(result.errors));
    assert.deepEqual(
      Object.keys(result.statusCodes).filter((code) => code !== '200'),
      [],
    );
  });
}
