/**
 * Which addresses the tagger may fetch from. A URL from the internet is untrusted input: by default every loopback,
 * private, link-local, carrier-grade NAT, unspecified, multicast and cloud-metadata address is refused (SSRF), for
 * IPv4, IPv6 and IPv4-mapped IPv6 alike, unless allow-listed by address or CIDR (`127.0.0.1`, `10.0.0.0/8`).
 */
import net, { BlockList } from 'node:net';
import { invalidOption } from '../errors.ts';

const REFUSED_V4 = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT; also Alibaba Cloud's metadata at 100.100.100.200
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local; AWS, GCP, Azure metadata at 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const;

const REFUSED_V6 = [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local; AWS's IPv6 metadata fd00:ec2::254
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['64:ff9b::', 96], // NAT64 of any IPv4, private ones included
] as const;

const refused = new BlockList();
for (const [address, prefix] of REFUSED_V4) refused.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of REFUSED_V6) refused.addSubnet(address, prefix, 'ipv6');

/** `::ffff:127.0.0.1` is 127.0.0.1. */
function normalise(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  return { address, family: net.isIPv6(address) ? 'ipv6' : 'ipv4' };
}

/**
 * Addresses or CIDR ranges (127.0.0.1, 10.0.0.0/8, ::1) as a BlockList. A bad entry is NS_ERR_INVALID_OPTION naming
 * `option`: `allow` in the library, `--allow` on the command line.
 */
export function parseAllowList(allow: readonly string[], option = 'allow'): BlockList {
  const list = new BlockList();
  for (const entry of allow) {
    const [address, prefix] = entry.split('/');
    const family = net.isIPv4(address ?? '') ? 'ipv4' : net.isIPv6(address ?? '') ? 'ipv6' : null;
    const bits = prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix);
    if (family === null || !Number.isInteger(bits) || bits < 0 || bits > (family === 'ipv4' ? 32 : 128)) {
      throw invalidOption(option, 'IP addresses or CIDR ranges (127.0.0.1, 10.0.0.0/8, ::1)', entry);
    }
    list.addSubnet(address!, bits, family);
  }
  return list;
}

export class AddressPolicy {
  readonly #allowed: BlockList;

  /** `allow`: addresses or CIDR ranges that may be fetched from even though they are private. */
  constructor(allow: readonly string[] = []) {
    this.#allowed = parseAllowList(allow);
  }

  /** Why the address may not be fetched from, or null when it may. */
  refusal(address: string): string | null {
    const { address: ip, family } = normalise(address);
    if (this.#allowed.check(ip, family)) return null;
    return refused.check(ip, family) ? `${address} is a private, loopback, link-local or metadata address` : null;
  }
}
