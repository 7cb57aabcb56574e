import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPrivateAddress } from '../../src/runtime/private-client.ts';

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
