/**
 * Which addresses the tagger may fetch from. A URL from the internet is untrusted input: by default every loopback,
 * private, link-local, carrier-grade NAT, unspecified, multicast and cloud-metadata address is refused (SSRF), for
 * IPv4, IPv6, and the IPv6 forms that carry an IPv4 address (judged by that address too), unless allow-listed by
 * address or CIDR (`127.0.0.1`, `10.0.0.0/8`).
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
] as const;

const refused = new BlockList();
for (const [address, prefix] of REFUSED_V4) refused.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of REFUSED_V6) refused.addSubnet(address, prefix, 'ipv6');

/** The 16 bytes of an IPv6 address (`::` and a dotted-quad tail allowed, a zone id ignored), or null. */
export function ipv6Bytes(address: string): Uint8Array | null {
  const text = address.replace(/%.*$/, '');
  if (!net.isIPv6(text)) return null;
  // A dotted-quad tail (::ffff:127.0.0.1) as its two hexadecimal groups.
  const hex = text.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`,
  );
  const [head = '', tail] = hex.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((group, k) => {
    bytes[2 * k] = group >> 8;
    bytes[2 * k + 1] = group & 0xff;
  });
  return bytes;
}

const dotted = (b: Uint8Array, at: readonly number[]) => at.map((k) => b[k]).join('.');
const startsWith = (b: Uint8Array, prefix: readonly number[]) => prefix.every((byte, k) => b[k] === byte);

/**
 * The IPv4 addresses an IPv6 address carries, which a translator on the path may deliver to: IPv4-mapped
 * (`::ffff:0:0/96`), IPv4-compatible (`::/96`), SIIT (`::ffff:0:0:0/96`), NAT64 (`64:ff9b::/96`, and the local-use
 * `64:ff9b:1::/48` at each position RFC 6052 allows, since its prefix length is the operator's), 6to4 (`2002::/16`)
 * and Teredo (`2001::/32`, the client's address inverted).
 */
export function embeddedIPv4(address: string): string[] {
  const b = ipv6Bytes(address);
  if (b === null) return [];
  const last = [12, 13, 14, 15];
  const zeros = (n: number) => b.subarray(0, n).every((x) => x === 0);
  if (zeros(10) && b[10] === 0xff && b[11] === 0xff) return [dotted(b, last)];
  if (zeros(12)) return [dotted(b, last)];
  if (zeros(8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return [dotted(b, last)];
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b]) && b.subarray(4, 12).every((x) => x === 0)) return [dotted(b, last)];
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01])) {
    // RFC 6052: /48 → bytes 6,7,9,10; /56 → 7,9,10,11; /64 → 9..12; /96 → 12..15 (byte 8 is always zero).
    return [dotted(b, [6, 7, 9, 10]), dotted(b, [7, 9, 10, 11]), dotted(b, [9, 10, 11, 12]), dotted(b, last)];
  }
  if (startsWith(b, [0x20, 0x02])) return [dotted(b, [2, 3, 4, 5])];
  if (startsWith(b, [0x20, 0x01, 0x00, 0x00])) return [last.map((k) => b[k]! ^ 0xff).join('.')];
  return [];
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
    if (net.isIPv4(address))
      return this.#refusal(address, 'ipv4')
        ? `${address} is a private, loopback, link-local or metadata address`
        : null;
    // An IPv6 address is judged as itself and as every IPv4 address it carries (translators deliver to those).
    const embedded = embeddedIPv4(address);
    if (embedded.length === 1 && this.#allowed.check(embedded[0]!, 'ipv4')) return null;
    if (this.#refusal(address.replace(/%.*$/, ''), 'ipv6'))
      return `${address} is a private, loopback, link-local or metadata address`;
    const carried = embedded.find((ip) => this.#refusal(ip, 'ipv4'));
    return carried === undefined
      ? null
      : `${address} carries the IPv4 address ${carried}, a private, loopback, link-local or metadata address`;
  }

  #refusal(ip: string, family: 'ipv4' | 'ipv6'): boolean {
    return !this.#allowed.check(ip, family) && refused.check(ip, family);
  }
}
