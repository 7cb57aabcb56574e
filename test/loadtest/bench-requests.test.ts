import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { NodescaleError } from '../../src/errors.ts';
import { readDataFile, readRequestsFile } from '../../src/loadtest/request-file.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { countingServer, rawServer, TEST_TLS, tlsCountingServer } from '../helpers/servers.ts';

const rejectsWith = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof NodescaleError && error.code === code && (pattern === undefined || pattern.test(error.message));

function tempFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ns-bench-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('https: verified with the CA given, counted like http, and reconnects resume the TLS session', async (t) => {
  // Every fifth response closes its connection: the generator reconnects, and offers its last session.
  const server = await tlsCountingServer(t, (_req, res, n) => {
    if (n % 5 === 0) res.setHeader('connection', 'close');
    res.end('ok');
  });
  const result = await runBench({ url: server.url, amount: 400, connections: 4, ca: TEST_TLS.ca });
  assert.equal(result.requests.total, 400);
  assert.equal(server.count(), 400);
  assert.equal(result.errors.total, 0);
  assert.ok(server.handshakes() >= 80, `handshakes ${server.handshakes()}`);
  // All but the first handshake of each connection (at most 4, before any session exists) can resume.
  assert.ok(server.resumed() >= server.handshakes() - 8, `resumed ${server.resumed()} of ${server.handshakes()}`);
});

test('https: a certificate no trusted CA signed fails as NS_ERR_TARGET_TLS naming --ca and --insecure', async (t) => {
  const server = await tlsCountingServer(t);
  await assert.rejects(
    runBench({ url: server.url, amount: 10, connections: 2 }),
    rejectsWith('NS_ERR_TARGET_TLS', /UNABLE_TO_VERIFY_LEAF_SIGNATURE.*--ca FILE.*--insecure/),
  );
  const insecure = await runBench({ url: server.url, amount: 10, connections: 2, insecure: true });
  assert.equal(insecure.requests.total, 10);
  // The certificate names 127.0.0.1 and localhost: another name is refused, and says which flag sets it.
  await assert.rejects(
    runBench({ url: server.url, amount: 10, connections: 2, ca: TEST_TLS.ca, servername: 'api.example.com' }),
    rejectsWith('NS_ERR_TARGET_TLS', /ERR_TLS_CERT_ALTNAME_INVALID.*--servername/),
  );
  // A peer that accepts and never answers the handshake (frozen): each connection gives up after the timeout.
  const silent = await rawServer(t, () => {});
  await assert.rejects(
    runBench({ url: `https://127.0.0.1:${silent.port}/`, amount: 10, connections: 2, timeoutMs: 200 }),
    rejectsWith('NS_ERR_TARGET_TLS', /no TLS handshake within 200 ms/),
  );
  // A TLS client against a plain-HTTP port: a handshake failure, counted as tls.
  const plain = await countingServer(t);
  await assert.rejects(
    runBench({ url: plain.url.replace('http:', 'https:'), amount: 10, connections: 2 }),
    rejectsWith('NS_ERR_TARGET_TLS'),
  );
});

test('--requests in order: each request sent its share, per-name results, HEAD framed without a body', async (t) => {
  const seen = new Map<string, number>();
  const server = await countingServer(t, (req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      if (req.url === '/echo') assert.equal(body, '{"q":1}');
      if (req.url === '/missing') res.statusCode = 404;
      // A HEAD answer says its length but sends none: framed as bodiless, the connection stays in step.
      res.setHeader('content-length', 5);
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
  });
  const requests = [
    { name: 'home', path: '/' },
    { name: 'echo', method: 'POST', path: '/echo', body: { q: 1 } },
    { name: 'home', url: `${server.url}?again` },
    { name: 'head', method: 'HEAD', path: '/head' },
    { path: '/missing' },
  ];
  const result = await runBench({ url: server.url, amount: 1000, connections: 4, pipelining: 3, requests });
  assert.equal(result.requests.total, 1000);
  assert.equal(result.errors.parse + result.errors.reset, 0);
  assert.deepEqual(Object.fromEntries(seen), {
    'GET /': 200,
    'POST /echo': 200,
    'GET /?again': 200,
    'HEAD /head': 200,
    'GET /missing': 200,
  });
  assert.deepEqual(Object.keys(result.byName!).sort(), ['GET /missing', 'echo', 'head', 'home']);
  assert.equal(result.byName!.home!.requests.total, 400);
  assert.deepEqual(result.byName!['GET /missing']!.statusCodes, { '404': 200 });
  assert.ok(result.byName!.echo!.latencyMs.p99 > 0);
  assert.equal(result.requestSet.order, 'sequence');
});

test('--requests with weights: picked at random in proportion, the same order from the same seed', async (t) => {
  const order: string[] = [];
  const server = await countingServer(t, (req, res) => {
    order.push(req.url!);
    res.end('ok');
  });
  const requests = [
    { path: '/a', weight: 3 },
    { path: '/b', weight: 1 },
  ];
  const first = await runBench({ url: server.url, amount: 4000, connections: 1, requests, seed: 42 });
  const a = order.filter((url) => url === '/a').length;
  assert.ok(a > 2800 && a < 3200, `/a ${a} of 4000 at weight 3:1`);
  assert.equal(first.requestSet.seed, 42);
  const firstOrder = order.splice(0);
  await runBench({ url: server.url, amount: 4000, connections: 1, requests, seed: 42 });
  assert.deepEqual(order, firstOrder);
});

test('--data fills {{field}} in path, header and body, JSON-escaped in a JSON body; {{seq}} is unique per request', async (t) => {
  const bodies: string[] = [];
  const paths: string[] = [];
  const server = await countingServer(t, (req, res) => {
    paths.push(`${req.url} ${String(req.headers['x-user'])}`);
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      bodies.push(body);
      res.end('ok');
    });
  });
  const data = [
    { id: 'a b', user: 'ann', q: 'say "hi"' },
    { id: 7, user: 'bob', q: 'x' },
  ];
  const requests = [
    { method: 'POST', path: '/u/{{id}}', headers: { 'x-user': '{{user}}' }, body: { query: '{{q}}', n: '{{seq}}' } },
  ];
  const result = await runBench({ url: server.url, amount: 100, connections: 3, workers: 2, requests, data });
  assert.equal(result.requests.total, 100);
  assert.equal(result.errors.total, 0);
  assert.ok(paths.includes('/u/a%20b ann') && paths.includes('/u/7 bob'), paths.slice(0, 4).join(', '));
  const parsed = bodies.map((body) => JSON.parse(body) as { query: string; n: string });
  assert.ok(parsed.some((body) => body.query === 'say "hi"'));
  // Two generator threads interleave the sequence: 0 … 99, each once.
  assert.deepEqual(
    parsed.map((body) => Number(body.n)).sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  // {{seq}} in a plain URL too, no data file needed.
  const seqPaths = new Set<string>();
  const other = await countingServer(t, (req, res) => {
    seqPaths.add(req.url!);
    res.end('ok');
  });
  await runBench({ url: `${other.url}item/{{seq}}`, amount: 50, connections: 2 });
  assert.equal(seqPaths.size, 50);
});

test('bad requests and data files: one clear error each, naming the file, entry and field', async (t) => {
  const url = 'http://127.0.0.1:9/';
  const cases: [string, string, RegExp][] = [
    ['[{"path": "/"},', 'NS_ERR_REQUESTS_FILE', /not valid JSON/],
    ['{"path": "/"}\n{"pth": "/x"}\n', 'NS_ERR_REQUESTS_FILE', /entry 2: unknown field "pth"; did you mean "path"\?/],
    ['[{"path": "/", "weight": 0}]', 'NS_ERR_REQUESTS_FILE', /weight must be a number > 0/],
    ['[{"path": "/", "headers": {"a": 1}}]', 'NS_ERR_REQUESTS_FILE', /header a must be a string/],
    ['[]', 'NS_ERR_REQUESTS_FILE', /has no requests/],
    ['{"path":"/"}\nnot json\n', 'NS_ERR_REQUESTS_FILE', /line 2 is not valid JSON/],
  ];
  for (const [text, code, pattern] of cases)
    assert.throws(() => readRequestsFile(tempFile(t, 'r.json', text)), rejectsWith(code, pattern), text);
  assert.throws(() => readRequestsFile('/nonexistent/r.json'), rejectsWith('NS_ERR_REQUESTS_FILE', /ENOENT/));
  assert.throws(() => readDataFile(tempFile(t, 'd.jsonl', '{"a":1}\n[1]\n')), rejectsWith('NS_ERR_DATA_FILE', /row 2/));
  // What the entries mean is checked against the target, before any connection.
  const bad: [object, string, RegExp][] = [
    [{ requests: [{ method: 'GE T' }] }, 'NS_ERR_REQUESTS_FILE', /entry 1: method/],
    [{ requests: [{ url: 'http://other.example/' }] }, 'NS_ERR_REQUESTS_FILE', /not the target's origin/],
    [{ requests: [{ path: 'x' }] }, 'NS_ERR_REQUESTS_FILE', /must start with/],
    [{ requests: [{ body: 'x'.repeat(8 * 1024 * 1024 + 1) }] }, 'NS_ERR_REQUESTS_FILE', /body is \d+ bytes; the limit/],
    [{ requests: [{ path: '/{{id}}' }] }, 'NS_ERR_DATA_FILE', /\{\{id\}\} needs a value from a data file/],
    [{ requests: [{ path: '/{{id}}' }], data: [{ id: 1 }, { ID: 2 }] }, 'NS_ERR_DATA_FILE', /row 2 has no field "id"/],
    [{ requests: [{ path: '/' }], method: 'POST' }, 'NS_ERR_INVALID_OPTION', /method is given per request/],
  ];
  for (const [options, code, pattern] of bad)
    await assert.rejects(
      runBench({ url, ...options }),
      rejectsWith(code, pattern),
      JSON.stringify(options).slice(0, 80),
    );
});

test('bench --requests from the command line: a bad entry names the file; a URL in the file can stand for the target', async (t) => {
  const { runCli } = await import('../helpers/cli.ts');
  const bad = tempFile(t, 'r.ndjson', '{"path":"/"}\n{"method":"GE T","path":"/"}\n');
  const run = await runCli(['bench', 'http://127.0.0.1:9/', '--requests', bad]);
  assert.equal(run.code, 2);
  assert.match(
    run.stderr,
    /^error NS_ERR_REQUESTS_FILE: --requests .*r\.ndjson entry 2: method must be an HTTP method/,
  );
  const server = await countingServer(t);
  const file = tempFile(
    t,
    'r.json',
    JSON.stringify([
      { name: 'a', url: `${server.url}a` },
      { name: 'b', path: '/b' },
    ]),
  );
  const ok = await runCli(['bench', '--requests', file, '-n', '100', '-c', '2', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const result = JSON.parse(ok.stdout) as { url: string; byName: Record<string, { requests: { total: number } }> };
  assert.equal(result.url, server.url);
  assert.equal(result.byName.a!.requests.total, 50);
  const missing = await runCli(['bench', '--requests', tempFile(t, 'p.json', '[{"path":"/"}]')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing the target URL \(or a "url" in the requests file\)/);
});
