/**
 * Whether a request comes straight from this host or a private network: what the runtime's metrics endpoint answers
 * by default (options.ts `metricsAccess`). A request a proxy forwarded is not, whatever its socket's address: behind
 * nginx on the same host every client would look like 127.0.0.1.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { invalidOption } from '../errors.ts';

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

/**
 * The balancers whose X-Forwarded-For is believed (the runtime's `trustProxy`): addresses or CIDR ranges. Anyone can
 * send the header; only a request whose socket comes from one of these is taken at its word.
 */
export function trustedProxies(list: readonly string[], name = 'trustProxy'): BlockList {
  const trusted = new BlockList();
  for (const entry of list) {
    const [address, bits] = entry.split('/');
    const family = isIPv4(address ?? '') ? 'ipv4' : isIPv6(address ?? '') ? 'ipv6' : null;
    const prefix = bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits);
    if (family === null || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128))
      throw invalidOption(
        name,
        'addresses or CIDR ranges of the balancers in front (10.0.0.5, 10.0.0.0/24, ::1)',
        entry,
      );
    trusted.addSubnet(address!, prefix, family);
  }
  return trusted;
}

const inList = (list: BlockList, address: string | undefined): boolean => {
  if (address === undefined) return false;
  const mapped = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIPv4(mapped) ? list.check(mapped, 'ipv4') : isIPv6(address) && list.check(address, 'ipv6');
};

/**
 * Who sent the request: its socket's address, or, when that is a trusted balancer, the address that balancer was
 * given — X-Forwarded-For read from the right, past every trusted hop (as express's `trust proxy` does).
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | null): string | undefined {
  const socket = req.socket.remoteAddress;
  if (trusted === null || !inList(trusted, socket)) return socket;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => hop.trim())
    .filter(Boolean);
  let client = socket;
  for (let i = hops.length - 1; i >= 0; i--) {
    client = hops[i];
    if (!inList(trusted, client)) break;
  }
  return client;
}

export function isPrivateClient(req: IncomingMessage, trusted: BlockList | null = null): boolean {
  // Through a trusted balancer, the client it names is the one that counts.
  if (trusted !== null && inList(trusted, req.socket.remoteAddress))
    return isPrivateAddress(clientAddress(req, trusted));
  if (PROXY_HEADERS.some((name) => req.headers[name] !== undefined)) return false;
  return isPrivateAddress(req.socket.remoteAddress);
}
