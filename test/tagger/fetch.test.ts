import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressPolicy, embeddedIPv4 } from '../../src/tagger/address-policy.ts';
import { fetchPage } from '../../src/tagger/fetch-page.ts';
import { countingServer } from '../helpers/servers.ts';

const HTML = '<!doctype html><title>t</title><p>hello</p>';
const local = new AddressPolicy(['127.0.0.1']);
const closed = new AddressPolicy();
const refusedWith = (promise: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(
    promise,
    (error: { code?: string; message: string }) =>
      error.code === code && (message === undefined || message.test(error.message)),
  );

test('the address policy refuses loopback, private, link-local and metadata addresses, IPv4 and IPv6 alike', () => {
  for (const address of [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '224.0.0.1',
  ]) {
    assert.notEqual(closed.refusal(address), null, address);
  }
  for (const address of ['93.184.215.14', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
    assert.equal(closed.refusal(address), null, address);
  const allowed = new AddressPolicy(['127.0.0.1', '10.0.0.0/8']);
  assert.equal(allowed.refusal('127.0.0.1'), null);
  assert.equal(allowed.refusal('10.9.9.9'), null);
  assert.notEqual(allowed.refusal('127.0.0.2'), null, 'only what is listed');
  assert.equal(allowed.refusal('::ffff:127.0.0.1'), null, 'allowed through its IPv4 address');
  assert.throws(() => new AddressPolicy(['not-an-ip']), /allow must be IP addresses or CIDR ranges/);
  assert.throws(() => new AddressPolicy(['10.0.0.0/40']), /allow must be/);
});

test('IPv6 forms that carry a private IPv4 address are judged by that address', () => {
  const carriers = {
    '::127.0.0.1': '127.0.0.1', // IPv4-compatible
    '::7f00:1': '127.0.0.1',
    '::ffff:7f00:1': '127.0.0.1', // IPv4-mapped, in hexadecimal
    '::ffff:0:10.0.0.1': '10.0.0.1', // SIIT
    '64:ff9b::169.254.169.254': '169.254.169.254', // NAT64, well-known prefix
    '64:ff9b:1::a9fe:a9fe': '169.254.169.254', // local-use NAT64, /96
    '64:ff9b:1:a9fe:a9:fe00::': '169.254.169.254', // local-use NAT64, /48 (RFC 6052 skips byte 8)
    '2002:7f00:1::': '127.0.0.1', // 6to4
    '2002:c0a8:101::1': '192.168.1.1',
    '2001:0:4136:e378:8000:63bf:80ff:fffe': '127.0.0.1', // Teredo: the client address, inverted
  };
  for (const [address, carried] of Object.entries(carriers)) {
    assert.deepEqual(
      embeddedIPv4(address).includes(carried),
      true,
      `${address} carries ${carried}: ${embeddedIPv4(address)}`,
    );
    assert.match(closed.refusal(address) ?? '', /private, loopback, link-local or metadata/, address);
  }
  // The same forms carrying a public address are fetched.
  for (const address of ['::ffff:0:8.8.8.8', '64:ff9b::8.8.8.8', '2002:808:808::1'])
    assert.equal(closed.refusal(address), null, address);
});

test('refused before any connection: literals, names resolving to loopback, bad schemes, credentials', async (t) => {
  const server = await countingServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(HTML));
  await refusedWith(fetchPage(server.url, { policy: closed }), 'NS_ERR_FETCH_REFUSED');
  await refusedWith(
    fetchPage(`http://localhost:${server.port}/`, { policy: closed }),
    'NS_ERR_FETCH_REFUSED',
    /localhost resolves to/,
  );
  await refusedWith(fetchPage('http://[::1]:1/', { policy: closed }), 'NS_ERR_FETCH_REFUSED');
  await refusedWith(fetchPage('http://169.254.169.254/latest/meta-data/', { policy: closed }), 'NS_ERR_FETCH_REFUSED');
  await refusedWith(fetchPage('http://[::ffff:7f00:1]/', { policy: closed }), 'NS_ERR_FETCH_REFUSED');
  await refusedWith(fetchPage('file:///etc/passwd', { policy: closed }), 'NS_ERR_FETCH_URL');
  await refusedWith(fetchPage('not a url', { policy: closed }), 'NS_ERR_FETCH_URL');
  await refusedWith(fetchPage(`http://user:secret@127.0.0.1:${server.port}/`, { policy: local }), 'NS_ERR_FETCH_URL');
  assert.equal(server.count(), 0, 'nothing reached the server');
  // Allow-listed, it is fetched.
  assert.equal((await fetchPage(server.url, { policy: local })).html, HTML);
  assert.equal(server.count(), 1);
});

test('redirects are followed and checked each time; loops are cut', async (t) => {
  const target = await countingServer(t, (_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(HTML),
  );
  const server = await countingServer(t, (req, res) => {
    if (req.url === '/to-target') return void res.writeHead(302, { location: target.url }).end();
    if (req.url === '/relative') return void res.writeHead(301, { location: '/to-target' }).end();
    // 127.0.0.2 is loopback but not allow-listed: a redirect must not reach it.
    if (req.url === '/to-private')
      return void res.writeHead(302, { location: `http://127.0.0.2:${target.port}/` }).end();
    if (req.url === '/to-file') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    res.writeHead(302, { location: '/loop' }).end();
  });
  const page = await fetchPage(`${server.url}relative`, { policy: local });
  assert.equal(page.html, HTML);
  assert.equal(page.url, target.url);
  await refusedWith(fetchPage(`${server.url}to-private`, { policy: local }), 'NS_ERR_FETCH_REFUSED');
  await refusedWith(fetchPage(`${server.url}to-file`, { policy: local }), 'NS_ERR_FETCH_URL');
  await refusedWith(
    fetchPage(`${server.url}loop`, { policy: local, maxRedirects: 3 }),
    'NS_ERR_FETCH_REDIRECTS',
    /more than 3 redirects/,
  );
  assert.equal(target.count(), 1, 'the refused redirect never reached its target');
});

test('huge pages (announced or not), slow servers, non-HTML and error statuses are refused with their codes', async (t) => {
  const big = 'x'.repeat(64 * 1024);
  const server = await countingServer(t, (req, res) => {
    if (req.url === '/announced')
      return void res.writeHead(200, { 'content-type': 'text/html', 'content-length': 10_000_000 }).end();
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/html' });
      for (let i = 0; i < 20; i++) res.write(big);
      return void res.end();
    }
    if (req.url === '/slow')
      return void setTimeout(() => res.writeHead(200, { 'content-type': 'text/html' }).end(HTML), 3000).unref();
    if (req.url === '/json') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (req.url === '/latin1')
      return void res
        .writeHead(200, { 'content-type': 'text/html; charset=iso-8859-1' })
        .end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    res.writeHead(404, { 'content-type': 'text/html' }).end('nope');
  });
  const o = { policy: local, maxBytes: 512 * 1024 };
  await refusedWith(fetchPage(`${server.url}announced`, o), 'NS_ERR_FETCH_TOO_LARGE', /10000000 bytes/);
  await refusedWith(fetchPage(`${server.url}chunked`, o), 'NS_ERR_FETCH_TOO_LARGE', /more than 524288 bytes/);
  await refusedWith(fetchPage(`${server.url}slow`, { ...o, timeoutMs: 200 }), 'NS_ERR_FETCH_TIMEOUT');
  await refusedWith(fetchPage(`${server.url}json`, o), 'NS_ERR_FETCH_NOT_HTML', /application\/json/);
  await refusedWith(fetchPage(`${server.url}missing`, o), 'NS_ERR_FETCH_FAILED', /answered 404/);
  assert.equal((await fetchPage(`${server.url}latin1`, o)).html, 'café', 'the declared charset is decoded');
});
