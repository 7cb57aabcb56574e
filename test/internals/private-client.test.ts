import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientAddress, isPrivateAddress, isPrivateClient, trustedProxies } from '../../src/runtime/private-client.ts';

test('private addresses: loopback, RFC 1918, CGNAT, link-local, ULA, IPv4-mapped; public ones are not', () => {
  for (const address of [
    '127.0.0.1',
    '10.1.2.3',
    '172.20.0.1',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.1.1',
    '::1',
    'fd00::1',
    'fe80::1',
    '::ffff:10.0.0.1',
  ])
    assert.equal(isPrivateAddress(address), true, address);
  for (const address of ['8.8.8.8', '172.32.0.1', '203.0.113.9', '2001:db8::1', '::ffff:8.8.8.8', undefined])
    assert.equal(isPrivateAddress(address), false, String(address));
});

test('trustProxy: X-Forwarded-For is believed only from a trusted balancer, read from the right past every trusted hop', () => {
  const trusted = trustedProxies(['127.0.0.1', '10.0.0.0/24', '::1']);
  const req = (remoteAddress: string, forwarded?: string) =>
    ({ socket: { remoteAddress }, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } }) as never;
  // Through the balancer: the client it names.
  assert.equal(clientAddress(req('127.0.0.1', '203.0.113.9'), trusted), '203.0.113.9');
  // A client's own forged hop on the left is not believed: the first untrusted hop from the right is the client.
  assert.equal(clientAddress(req('127.0.0.1', '10.9.9.9, 203.0.113.9, 10.0.0.5'), trusted), '203.0.113.9');
  // Not from a trusted balancer: the header is anyone's, the socket is the client.
  assert.equal(clientAddress(req('198.51.100.7', '10.0.0.1'), trusted), '198.51.100.7');
  assert.equal(clientAddress(req('127.0.0.1', '203.0.113.9'), null), '127.0.0.1');
  assert.equal(clientAddress(req('::ffff:127.0.0.1', '203.0.113.9'), trusted), '203.0.113.9');
  // Private through a trusted balancer when the client it names is; never when the header comes from elsewhere.
  assert.equal(isPrivateClient(req('127.0.0.1', '10.1.2.3'), trusted), true);
  assert.equal(isPrivateClient(req('127.0.0.1', '203.0.113.9'), trusted), false);
  assert.equal(isPrivateClient(req('127.0.0.1', '10.1.2.3'), null), false);
  assert.throws(() => trustedProxies(['10.0.0.0/40']), {
    code: 'NS_ERR_INVALID_OPTION',
    message: /^trustProxy must be/,
  });
  assert.throws(() => trustedProxies(['nginx']), { code: 'NS_ERR_INVALID_OPTION' });
});
