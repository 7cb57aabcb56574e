import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { HELLO_KINDS, startHello } from '../../src/hello/index.ts';
import { parseHttpRequest } from '../../src/hello/tcp.ts';
import { NodescaleError } from '../../src/errors.ts';
import { runCli } from '../helpers/cli.ts';

/** Sends raw bytes on one connection and collects everything until the server closes or `wait` ms of quiet. */
function exchange(port: number, payload: string, wait = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let received = '';
    let timer = setTimeout(() => socket.destroy(), wait);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), wait);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
  });
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

for (const kind of HELLO_KINDS) {
  test(`${kind}: Hello World! over keep-alive, pipelined requests answered in order`, async (t) => {
    const hello = await startHello(kind, { port: 0 });
    t.after(() => hello.close());
    const port = Number(new URL(hello.url).port);
    const response = await fetch(hello.url);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'Hello World!');
    const three = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3));
    assert.deepEqual(statuses(three), [200, 200, 200]);
    assert.equal(three.split('Hello World!').length - 1, 3);
  });
}

test('tcp: bodies by Content-Length and chunked are skipped, HEAD has no body, Connection: close closes', async (t) => {
  const hello = await startHello('tcp', { port: 0 });
  t.after(() => hello.close());
  const port = Number(new URL(hello.url).port);
  const post = 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world';
  const chunked = 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
  const head = 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n';
  const close = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  const all = await exchange(port, post + chunked + head + close + 'GET / HTTP/1.1\r\n\r\n', 2000);
  assert.deepEqual(statuses(all), [200, 200, 200, 200], 'the request after Connection: close is not answered');
  assert.equal(all.split('Hello World!').length - 1, 3, 'HEAD has no body');
  // Byte by byte: a request split at every point is still one request.
  const oneByOne = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', async () => {
      for (const ch of post) {
        socket.write(ch);
        await new Promise((r) => setImmediate(r));
      }
    });
    let got = '';
    socket.on('data', (c) => {
      got += c;
      socket.destroy();
      resolve(got);
    });
  });
  assert.deepEqual(statuses(oneByOne), [200]);
});

test('tcp: what is not HTTP gets 400 and a close', async (t) => {
  const hello = await startHello('tcp', { port: 0 });
  t.after(() => hello.close());
  const port = Number(new URL(hello.url).port);
  assert.deepEqual(statuses(await exchange(port, 'hello there\r\n\r\n', 2000)), [400]);
  assert.deepEqual(statuses(await exchange(port, 'GET / HTTP/1.1\r\nbad header line\r\n\r\n', 2000)), [400]);
  assert.deepEqual(statuses(await exchange(port, 'GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 2000)), [400]);
  assert.deepEqual(parseHttpRequest('GET / HTTP/1.0\r\n\r\n', 0), { end: 18, head: false, close: true });
});

test('a port in use is NS_ERR_LISTEN', async (t) => {
  const first = await startHello('http', { port: 0 });
  t.after(() => first.close());
  const port = Number(new URL(first.url).port);
  await assert.rejects(
    startHello('tcp', { port }),
    (e: unknown) => e instanceof NodescaleError && e.code === 'NS_ERR_LISTEN',
  );
});

test('nodescale hello http --protect: the runtime in front (metrics, health), Hello World! unchanged; not for tcp', async () => {
  const { main } = await import('../../src/cli/main.ts');
  const { PassThrough } = await import('node:stream');
  const stdout = new PassThrough();
  const stop = new AbortController();
  const exited = main(['hello', 'http', '--port', '0', '--protect'], {
    stdout,
    stderr: new PassThrough(),
    interactive: false,
    signal: stop.signal,
  });
  const line = await new Promise<string>((resolve) => stdout.on('data', (chunk: Buffer) => resolve(String(chunk))));
  assert.match(line, /^http hello server \(protected\) listening on http:\/\/127\.0\.0\.1:\d+\/$/m);
  const url = line.trim().split(' ').at(-1)!;
  assert.equal(await (await fetch(url)).text(), 'Hello World!');
  assert.equal((await fetch(new URL('/readyz', url))).status, 200);
  const metrics = await (await fetch(new URL('/metrics', url))).text();
  assert.match(metrics, /nodescale_http_request_duration_seconds_count\{route="\*",method="GET",status="200"\} 1\n/);
  stop.abort();
  assert.equal(await exited, 0);
  const tcp = await runCli(['hello', 'tcp', '--protect']);
  assert.equal(tcp.code, 2);
  assert.match(tcp.stderr, /NS_ERR_USAGE.*--protect needs an HTTP server/);
});

test('--tls-cert/--tls-key: every kind serves https: with the certificate, loaded by bench over TLS', async (t) => {
  const { runBench } = await import('../../src/loadtest/run.ts');
  const { TEST_TLS } = await import('../helpers/servers.ts');
  for (const kind of HELLO_KINDS) {
    const hello = await startHello(kind, { port: 0, tls: { cert: TEST_TLS.cert, key: TEST_TLS.key } });
    t.after(() => hello.close());
    assert.match(hello.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
    const result = await runBench({ url: hello.url, amount: 200, connections: 4, ca: TEST_TLS.ca });
    assert.deepEqual(result.statusCodes, { '200': 200 }, kind);
    assert.equal(result.bytes.total > 200 * 'Hello World!'.length, true);
  }
  const cli = await runCli(['hello', 'http', '--tls-cert', 'x.pem']);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /--tls-cert and --tls-key go together/);
});
