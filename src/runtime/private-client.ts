/**
 * Whether a request comes straight from this host or a private network: what the runtime's metrics endpoint answers
 * by default (options.ts `metricsAccess`). A request a proxy forwarded is not, whatever its socket's address: behind
 * nginx on the same host every client would look like 127.0.0.1.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4 } from 'node:net';

const PRIVATE = new BlockList();
for (const [network, prefix] of [
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
] as const)
  PRIVATE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  PRIVATE.addSubnet(network, prefix, 'ipv6');

const PROXY_HEADERS = ['x-forwarded-for', 'forwarded', 'x-real-ip'];

export function isPrivateAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  // An IPv4 client of a dual-stack socket: ::ffff:a.b.c.d.
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIPv4(mapped) ? PRIVATE.check(mapped, 'ipv4') : PRIVATE.check(address, 'ipv6');
}

export function isPrivateClient(req: IncomingMessage): boolean {
  if (PROXY_HEADERS.some((name) => req.headers[name] !== undefined)) return false;
  return isPrivateAddress(req.socket.remoteAddress);
}
