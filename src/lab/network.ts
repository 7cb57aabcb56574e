/**
 * The lab's network: "hosts" that are network namespaces, one bridge per region, and a router between regions, all
 * on one Linux machine as root, in 198.18.0.0/15 (the range reserved for benchmarking; nothing else is touched).
 *
 *   this machine ──veth── router namespace ── bridge r1 ── veth ── host namespaces of region 1
 *   198.18.S.1/30         (ip_forward on)   └─ bridge r2 ── veth ── host namespaces of region 2
 *
 * Each lab takes a slot S (0–15) under /run/nodescale-lab, so two labs (two tests) never share addresses: region r
 * of slot S is 198.18.(16·S + r).0/24, its router .1, its hosts .2 up. This machine reaches every host through the
 * router (one route, 198.18.16·S.0/20), so a test can be a client of any host directly. Every host sees every other
 * by name: /etc/netns/<namespace>/hosts (what `ip netns exec` mounts over /etc/hosts).
 *
 * A host is partitioned by taking its link down on the router's side (and healed by bringing it back up): its
 * processes keep running, frozen out of the network, as a cut cable leaves them. remove() kills every process in
 * every namespace, deletes them (which deletes their links and the route), and frees the slot.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';
import { createNamespace, killEveryProcessIn, type Namespace } from '../servers/netns.ts';

export interface LabHostSpec {
  /** A short name: letters, digits and dashes (broker1, r1-api1). */
  name: string;
  /** 1-based region. */
  region: number;
}

export interface LabHost {
  readonly name: string;
  readonly region: number;
  readonly address: string;
  readonly ns: Namespace;
}

export interface LabNetwork {
  readonly slot: number;
  /** This machine's end of the uplink: where a connection from this machine comes from. */
  readonly gateway: string;
  readonly hosts: ReadonlyMap<string, LabHost>;
  host(name: string): LabHost;
  /** Cuts a host off the network (its link down at the router); its processes keep running. */
  partition(name: string): void;
  heal(name: string): void;
  /** Whether partition() cut this host off (and heal() has not joined it again). */
  isPartitioned(name: string): boolean;
  /** Kills everything in the lab's namespaces, deletes them and frees the slot. */
  remove(): Promise<void>;
}

const SLOTS = 16;
export const SLOT_DIR = '/run/nodescale-lab';
const NAME = /^[a-z][a-z0-9-]{0,30}$/;

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes a free slot (a lock file holding our pid); a slot whose holder died is taken over. */
function takeSlot(): { slot: number; release(): void } {
  mkdirSync(SLOT_DIR, { recursive: true, mode: 0o755 });
  for (let slot = 0; slot < SLOTS; slot++) {
    const file = path.join(SLOT_DIR, `slot-${slot}`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o644);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return { slot, release: () => rmSync(file, { force: true }) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = Number(readFileSync(file, 'utf8'));
        // A lab whose process died: its namespaces are cleaned up below, before the slot is reused.
        if (Number.isInteger(holder) && holder > 0 && alive(holder)) break;
        removeSlotLeftovers(slot);
        rmSync(file, { force: true });
      }
    }
  }
  throw new NodescaleError('NS_ERR_LAB', `every one of the ${SLOTS} lab slots is in use (${SLOT_DIR})`);
}

const prefix = (slot: number) => `nsl${slot}-`;

/** The network namespace of a lab's host: what `ip netns exec` takes. */
export const namespaceOf = (slot: number, host: string) => `${prefix(slot)}${host}`;

/**
 * Deletes the namespaces of a slot left by a lab whose process died (every process in them killed), their files in
 * /etc/netns, and this machine's end of the uplink.
 */
function removeSlotLeftovers(slot: number): void {
  let list: string;
  try {
    list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (!name.startsWith(prefix(slot))) continue;
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n'))
        if (Number(pid) > 0) process.kill(Number(pid), 'SIGKILL');
      ip(['netns', 'del', name]);
    } catch {
      // gone meanwhile
    }
    rmSync(path.join('/etc/netns', name), { recursive: true, force: true });
  }
  try {
    ip(['link', 'del', `nsl${slot}-up`]);
  } catch {
    // gone with the router's namespace
  }
}

/**
 * What a lab whose process died left in `slot` (its namespaces, their processes and files), removed, and the slot
 * freed; nothing when the slot is free or held by a live lab (which may be another one since).
 */
export function removeDeadLab(slot: number): void {
  const file = path.join(SLOT_DIR, `slot-${slot}`);
  let holder: number;
  try {
    holder = Number(readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (Number.isInteger(holder) && holder > 0 && alive(holder)) return;
  removeSlotLeftovers(slot);
  rmSync(file, { force: true });
}

export async function createLabNetwork(specs: LabHostSpec[]): Promise<LabNetwork> {
  const regions = Math.max(...specs.map((spec) => spec.region));
  if (specs.length === 0 || regions > 15 || specs.some((spec) => spec.region < 1 || !Number.isInteger(spec.region)))
    throw new NodescaleError('NS_ERR_LAB', 'a lab has at least one host, in regions 1 to 15');
  for (const spec of specs)
    if (!NAME.test(spec.name)) throw new NodescaleError('NS_ERR_LAB', `lab host name ${JSON.stringify(spec.name)}`);
  if (new Set(specs.map((spec) => spec.name)).size !== specs.length)
    throw new NodescaleError('NS_ERR_LAB', 'lab host names must differ');
  const { slot, release } = takeSlot();
  const base = 16 * slot;
  const made: Namespace[] = [];
  const upLink = `nsl${slot}-up`;
  const hosts = new Map<string, LabHost>();
  const links = new Map<string, string>();
  const cut = new Set<string>();
  try {
    const router = createNamespace(`${prefix(slot)}router`);
    made.push(router);
    const inRouter = (args: string[]) => ip(['netns', 'exec', router.name, 'ip', ...args]);
    router.sysctl('net.ipv4.ip_forward', 1);
    ip(['link', 'add', upLink, 'type', 'veth', 'peer', 'name', 'up0', 'netns', router.name]);
    ip(['addr', 'add', `198.18.${base}.1/30`, 'dev', upLink]);
    ip(['link', 'set', upLink, 'up']);
    inRouter(['addr', 'add', `198.18.${base}.2/30`, 'dev', 'up0']);
    inRouter(['link', 'set', 'up0', 'up']);
    ip(['route', 'add', `198.18.${base}.0/20`, 'via', `198.18.${base}.2`]);
    for (let region = 1; region <= regions; region++) {
      inRouter(['link', 'add', `br${region}`, 'type', 'bridge']);
      inRouter(['addr', 'add', `198.18.${base + region}.1/24`, 'dev', `br${region}`]);
      inRouter(['link', 'set', `br${region}`, 'up']);
    }
    const next = new Array<number>(regions + 1).fill(2);
    specs.forEach((spec, index) => {
      const ns = createNamespace(`${prefix(slot)}${spec.name}`);
      made.push(ns);
      const address = `198.18.${base + spec.region}.${next[spec.region]!++}`;
      const link = `h${index}`;
      ip(['link', 'add', link, 'netns', router.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      inRouter(['link', 'set', link, 'master', `br${spec.region}`]);
      inRouter(['link', 'set', link, 'up']);
      const inHost = (args: string[]) => ip(['netns', 'exec', ns.name, 'ip', ...args]);
      inHost(['addr', 'add', `${address}/24`, 'dev', 'eth0']);
      inHost(['link', 'set', 'eth0', 'up']);
      inHost(['route', 'add', 'default', 'via', `198.18.${base + spec.region}.1`]);
      hosts.set(spec.name, { name: spec.name, region: spec.region, address, ns });
      links.set(spec.name, link);
    });
    // Every address a host may be reached from has a name here, this machine's end of the uplink too: a server that
    // looks up its peer's name (RabbitMQ does, as it accepts a connection) is answered at once, never after a DNS
    // timeout. The machine's own nameserver is not reachable from the lab: a query goes to the host itself, where
    // nothing answers (refused at once), until the lab runs its own DNS.
    const table = [
      '127.0.0.1 localhost',
      `198.18.${base}.1 lab-client`,
      ...[...hosts.values()].map((host) => `${host.address} ${host.name}`),
    ];
    for (const host of hosts.values()) {
      host.ns.etcFile('hosts', `${table.join('\n')}\n`);
      host.ns.etcFile('resolv.conf', 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    }
    const host = (name: string): LabHost => {
      const found = hosts.get(name);
      if (found === undefined) throw new NodescaleError('NS_ERR_LAB', `the lab has no host "${name}"`);
      return found;
    };
    return {
      slot,
      gateway: `198.18.${base}.1`,
      hosts,
      host,
      partition: (name) => {
        inRouter(['link', 'set', links.get(host(name).name)!, 'down']);
        cut.add(name);
      },
      heal: (name) => {
        inRouter(['link', 'set', links.get(host(name).name)!, 'up']);
        cut.delete(name);
      },
      isPartitioned: (name) => cut.has(name),
      remove: async () => {
        await removeAll(made);
        await linkGone(upLink);
        release();
      },
    };
  } catch (error) {
    await removeAll(made);
    await linkGone(upLink);
    release();
    throw error;
  }
}

/** The kernel frees a deleted namespace's links a moment later: the slot is reusable once this machine's end is gone. */
async function linkGone(link: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      ip(['link', 'show', link]);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  try {
    ip(['link', 'del', link]);
  } catch {
    // gone after all
  }
}

async function removeAll(namespaces: Namespace[]): Promise<void> {
  // Hosts first (their processes), the router last: its deletion takes this machine's link and route with it.
  for (const ns of [...namespaces].reverse()) {
    await killEveryProcessIn(ns.name);
    await ns.remove().catch(() => {});
  }
}
