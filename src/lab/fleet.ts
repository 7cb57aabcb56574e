/**
 * The talk's last picture, built on one Linux machine as root: a fleet of hosts (network namespaces, network.ts) in
 * one or more regions, each region with a balancer (haproxy, on the configuration `nodescale deploy haproxy`
 * generates) in front of its API hosts, and compute hosts taking the extraction off them over a RabbitMQ cluster;
 * shared state in Redis behind Sentinel; round-robin DNS (dnsmasq) answering the service's name with every
 * region's balancer. `nodescale lab up` runs it; the lab's tests build the parts they need from the same pieces.
 *
 *   region r:  r<r>-lb (haproxy :80) ─→ r<r>-api<i> (nodescale run … tagger :3000) ─┐
 *              r<r>-compute<i> (nodescale run … compute-worker tagger, /metrics :9200) ─┤
 *   region 1:  broker<i> (RabbitMQ :5672), redis<i> (:6379, sentinel :26379),        ├─ the shared tier
 *              corpus (the pages the tagger fetches, :8080), dns (dnsmasq :53)        ┘
 *
 * Secrets (the broker's and Redis's passwords) reach the processes through their environment, never their command
 * lines. Every process belongs to a host; stop() stops them and removes the network: nothing is left.
 */
import type { ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModel } from '../deploy/model.ts';
import { renderHaproxy } from '../deploy/haproxy.ts';
import { NodescaleError } from '../errors.ts';
import { sibling } from '../module-file.ts';
import { killEveryProcessIn, pidsIn, signalEveryProcessIn } from '../servers/netns.ts';
import { limitCpu, type CpuLimit } from './cgroup.ts';
import { accepts } from '../servers/process.ts';
import { startBrokerCluster, AMQP_PORT, type BrokerCluster } from './broker.ts';
import { createLabNetwork, type LabHost, type LabHostSpec, type LabNetwork } from './network.ts';
import { startRedisGroup, REDIS_PORT, SENTINEL_PORT, type RedisGroup } from './redis.ts';

export interface FleetSpec {
  regions: number;
  apiHosts: number;
  computeHosts: number;
  brokerNodes: number;
  redisNodes: number;
  /** Each API host held to this many cores (a cgroup), or null: as much as the machine has. */
  apiCpu?: number | null;
}

export const FLEET_DEFAULTS: Readonly<FleetSpec> = Object.freeze({
  regions: 2,
  apiHosts: 2,
  computeHosts: 1,
  brokerNodes: 3,
  redisNodes: 3,
});

export const FLEET_LIMITS = Object.freeze({ regions: 4, apiHosts: 8, computeHosts: 8, brokerNodes: 5, redisNodes: 5 });

export const SERVICE_NAME = 'tagger.lab';
const API_PORT = 3000;
const COMPUTE_METRICS_PORT = 9200;
const CORPUS_PORT = 8080;
const BALANCER_PORT = 80;
/** The load generator's host. */
export const GENERATOR = 'gen';
const WAN_CONTROL_PORT = 9999;
const RELAY = fileURLToPath(sibling('./wan-relay', import.meta.url));

export type Role = 'balancer' | 'api' | 'compute' | 'broker' | 'redis' | 'corpus' | 'dns' | 'wan' | 'generator';

export interface FleetHost {
  readonly host: LabHost;
  readonly role: Role;
  /** What it runs, for people: "haproxy :80 → r1-api1, r1-api2". */
  readonly runs: string;
  /** Whether it answers as it should now: 'ok', or what is wrong. */
  check(): Promise<string>;
}

export interface Fleet {
  readonly network: LabNetwork;
  readonly hosts: readonly FleetHost[];
  /** The service's name and the balancers' addresses it resolves to. */
  readonly service: { name: string; dns: string; balancers: string[] };
  status(): Promise<HostStatus[]>;
  /**
   * A fault on a host (or, for partition and heal, on every host of a region: `region2`); latency takes a region
   * other than the first and the round trip it adds to its link to the shared tier (`rttMs`, 0 to remove it). What
   * was done, in words.
   */
  fault(kind: FaultKind, target: string, rttMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface HostStatus {
  name: string;
  region: number;
  address: string;
  role: Role;
  runs: string;
  health: string;
}

export const FAULT_KINDS = ['kill', 'freeze', 'thaw', 'partition', 'heal', 'latency', 'dns-out', 'dns-in'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The hosts a spec makes, by name and region: the shared tier in region 1, a balancer and its hosts per region. */
export function fleetHosts(spec: FleetSpec): (LabHostSpec & { role: Role })[] {
  const hosts: (LabHostSpec & { role: Role })[] = [];
  for (let i = 1; i <= spec.brokerNodes; i++) hosts.push({ name: `broker${i}`, region: 1, role: 'broker' });
  for (let i = 1; i <= spec.redisNodes; i++) hosts.push({ name: `redis${i}`, region: 1, role: 'redis' });
  hosts.push({ name: 'corpus', region: 1, role: 'corpus' }, { name: 'dns', region: 1, role: 'dns' });
  // Where load comes from: a client host like any other (its own address, the lab's DNS), `lab exec gen -- …`.
  hosts.push({ name: GENERATOR, region: 1, role: 'generator' });
  for (let region = 1; region <= spec.regions; region++) {
    hosts.push({ name: `r${region}-lb`, region, role: 'balancer' });
    if (region > 1) hosts.push({ name: `r${region}-wan`, region, role: 'wan' });
    for (let i = 1; i <= spec.apiHosts; i++) hosts.push({ name: `r${region}-api${i}`, region, role: 'api' });
    for (let i = 1; i <= spec.computeHosts; i++)
      hosts.push({ name: `r${region}-compute${i}`, region, role: 'compute' });
  }
  return hosts;
}

const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));

/** GET url within 2 s: 'ok' on a 200, else what came back. */
async function httpCheck(url: string): Promise<string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status === 200 ? 'ok' : `HTTP ${response.status}`;
  } catch (error) {
    return `no answer (${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message})`;
  }
}

const portCheck = async (host: string, port: number) =>
  (await accepts(port, host)) ? 'ok' : `:${port} refused or silent`;

/** A process in a host that must not outlive the lab: its output kept (the last 64 KiB) for status and errors. */
function spawnIn(host: LabHost, argv: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output(): string } {
  const child = host.ns.spawn(argv, { env: { ...process.env, ...env } });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-65_536));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

async function until(check: () => Promise<string>, what: string, timeoutMs: number, output?: () => string) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if ((last = await check()) === 'ok') return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const tail = output?.().trim().split('\n').slice(-5).join('\n');
  throw new NodescaleError(
    'NS_ERR_LAB',
    `${what} did not come up within ${timeoutMs} ms: ${last}${tail ? `\n${tail}` : ''}`,
  );
}

export async function startFleet(spec: FleetSpec, log: (line: string) => void = () => {}): Promise<Fleet> {
  const specs = fleetHosts(spec);
  const network = await createLabNetwork(specs.map(({ name, region }) => ({ name, region })));
  const byRole = (role: Role) => specs.filter((entry) => entry.role === role).map((entry) => network.host(entry.name));
  const hosts: FleetHost[] = [];
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  let cluster: BrokerCluster | null = null;
  let redis: RedisGroup | null = null;
  const stop = async () => {
    // The clients first, gracefully (the supervisors drain their workers), for 10 s at most; then the shared tier;
    // then the network, which kills whatever is left in it. A frozen host is thawed first: it could not stop.
    for (const host of network.hosts.values()) signalEveryProcessIn(host.ns.name, 'SIGCONT');
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(resolve, 10_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    await cluster?.stop().catch(() => {});
    await redis?.stop().catch(() => {});
    await network.remove();
    for (const limit of limits) await limit.remove();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  const relays = new Map<number, string>();
  const limits: CpuLimit[] = [];
  let dnsProcess: { child: ChildProcess; output(): string } | null = null;
  /** The balancers the service's name answers with now. */
  let inDns: string[] = [];
  let startDns: (listed: readonly string[]) => Promise<void> = async () => {};
  try {
    log(`network: ${specs.length} hosts in ${spec.regions} region(s), slot ${network.slot}`);
    // The link between regions: a region other than the first reaches the shared tier through its relay host, by
    // the names of the shared tier's hosts, which its hosts file gives the relay's addresses (wan-relay.ts).
    const shared = [...byRole('broker'), ...byRole('redis'), network.host('corpus')];
    const ports = (host: LabHost) =>
      host.name.startsWith('broker')
        ? [AMQP_PORT]
        : host.name.startsWith('redis')
          ? [REDIS_PORT, SENTINEL_PORT]
          : [CORPUS_PORT];
    for (const wan of byRole('wan')) {
      const prefix = wan.address.slice(0, wan.address.lastIndexOf('.'));
      const alias = new Map(shared.map((host, i) => [host.name, `${prefix}.${200 + i}`]));
      for (const address of alias.values()) await wan.ns.exec(['ip', 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      const routes = shared.flatMap((host) =>
        ports(host).map((port) => ({
          listen: { host: alias.get(host.name)!, port },
          target: { host: host.address, port },
        })),
      );
      const control = `${wan.address}:${WAN_CONTROL_PORT}`;
      const relay = spawnIn(wan, [process.execPath, RELAY], {
        NODESCALE_WAN_ROUTES: JSON.stringify(routes),
        NODESCALE_WAN_CONTROL: control,
      });
      children.push(relay.child);
      relays.set(wan.region, control);
      await until(() => httpCheck(`http://${control}/latency`), wan.name, 15_000, relay.output);
      const table = [
        '127.0.0.1 localhost',
        `${network.gateway} lab-client`,
        ...[...network.hosts.values()].map((host) => `${alias.get(host.name) ?? host.address} ${host.name}`),
      ];
      for (const host of network.hosts.values())
        if (host.region === wan.region) host.ns.etcFile('hosts', `${table.join('\n')}\n`);
      hosts.push({
        host: wan,
        role: 'wan',
        runs: `delaying TCP relay: region ${wan.region} → ${shared.map((host) => host.name).join(', ')}`,
        check: async () => {
          try {
            const response = await fetch(`http://${control}/latency`, { signal: AbortSignal.timeout(2_000) });
            const { rttMs } = (await response.json()) as { rttMs: number };
            return rttMs === 0 ? 'ok' : `ok, +${rttMs} ms round trip`;
          } catch (error) {
            return `no answer (${(error as Error).message})`;
          }
        },
      });
    }
    // The shared tier first: everything else connects to it.
    const brokers = byRole('broker');
    const redisHosts = byRole('redis');
    const [startedCluster, startedRedis] = await Promise.all([
      startBrokerCluster(brokers),
      startRedisGroup(redisHosts, { downAfterMs: 2_000, byName: true }),
    ]);
    cluster = startedCluster;
    redis = startedRedis;
    log(`broker: RabbitMQ cluster of ${brokers.length} (${brokers.map((host) => host.name).join(', ')})`);
    log(`store: Redis on ${redisHosts.map((host) => host.name).join(', ')}, a sentinel on each`);
    for (const host of brokers)
      hosts.push({
        host,
        role: 'broker',
        runs: `rabbitmq-server :${AMQP_PORT}`,
        check: () => portCheck(host.address, AMQP_PORT),
      });
    for (const [i, host] of redisHosts.entries())
      hosts.push({
        host,
        role: 'redis',
        runs: `redis-server :${REDIS_PORT} (${i === 0 ? 'master at start' : 'replica at start'}), redis-sentinel :${SENTINEL_PORT}`,
        check: async () => {
          const server = await portCheck(host.address, REDIS_PORT);
          const sentinel = await portCheck(host.address, SENTINEL_PORT);
          return server === 'ok' && sentinel === 'ok' ? 'ok' : `redis ${server}, sentinel ${sentinel}`;
        },
      });
    // By name: each host resolves the shared tier itself (another region, through its relay).
    const brokerUrls = cluster.nodes.map(({ host, node }) => {
      const url = new URL(node.url);
      url.hostname = host.name;
      return url.href.replace(/\/$/, '');
    });
    const env = { NODESCALE_BROKER_URL: brokerUrls.join(','), NODESCALE_STORE_URL: redis.storeUrl };

    const corpus = network.host('corpus');
    const corpusProcess = spawnIn(
      corpus,
      [process.execPath, BIN, 'corpus', 'serve', '--port', String(CORPUS_PORT), '--host', corpus.address],
      {},
    );
    children.push(corpusProcess.child);
    const corpusUrl = `http://${corpus.address}:${CORPUS_PORT}`;
    hosts.push({
      host: network.host(GENERATOR),
      role: 'generator',
      runs: 'nothing until asked: nodescale lab exec gen -- nodescale bench …',
      check: async () => 'ok',
    });
    hosts.push({
      host: corpus,
      role: 'corpus',
      runs: `nodescale corpus :${CORPUS_PORT}`,
      check: () => httpCheck(`${corpusUrl}/`),
    });

    const supervised = (host: LabHost, app: string[], check: () => Promise<string>) => {
      const run = spawnIn(
        host,
        [process.execPath, BIN, 'run', BIN, '-w', '1', '--name', `lab${network.slot}-${host.name}`, '--', ...app],
        env,
      );
      children.push(run.child);
      return until(check, `${host.name} (${app[0]})`, 120_000, run.output);
    };
    const computeHosts = byRole('compute');
    const apiHosts = byRole('api');
    await Promise.all([
      ...computeHosts.map((host) => {
        const check = () => httpCheck(`http://${host.address}:${COMPUTE_METRICS_PORT}/readyz`);
        hosts.push({ host, role: 'compute', runs: 'nodescale run -w 1 compute-worker tagger', check });
        return supervised(
          host,
          ['compute-worker', 'tagger', '--metrics', `${host.address}:${COMPUTE_METRICS_PORT}`],
          check,
        );
      }),
      ...apiHosts.map((host) => {
        const check = () => httpCheck(`http://${host.address}:${API_PORT}/readyz`);
        hosts.push({
          host,
          role: 'api',
          runs: `nodescale run -w 1 tagger :${API_PORT} --compute amqp --store (Sentinel)`,
          check,
        });
        return supervised(
          host,
          [
            'tagger',
            ...['--port', String(API_PORT), '--host', host.address, '--compute', 'amqp'],
            ...['--corpus-url', corpusUrl],
          ],
          check,
        );
      }),
    ]);
    log(`api: ${apiHosts.length} host(s), compute: ${computeHosts.length} host(s), under nodescale run`);
    const cores = spec.apiCpu ?? null;
    if (cores !== null) {
      // Every process of the host (the supervisor and its workers; workers it forks later inherit the group).
      for (const host of apiHosts) {
        const limit = limitCpu(`nodescale-lab${network.slot}-${host.name}`, cores);
        limits.push(limit);
        limit.add(pidsIn(host.ns.name));
      }
      log(`api: each host held to ${cores} core(s) (a cgroup of the cpu controller)`);
    }

    // A balancer per region, on nodescale deploy's haproxy configuration, in front of the region's API hosts.
    const balancers: string[] = [];
    for (let region = 1; region <= spec.regions; region++) {
      const host = network.host(`r${region}-lb`);
      const upstreams = apiHosts.filter((api) => api.region === region);
      const model = buildModel({
        upstreams: upstreams.map((api) => `${api.address}:${API_PORT}`),
        listen: BALANCER_PORT,
        listenHost: host.address,
        accessLog: 'off',
      });
      const dir = mkdtempSync(path.join(os.tmpdir(), `nodescale-lab${network.slot}-${process.pid}-haproxy-`));
      dirs.push(dir);
      const file = path.join(dir, 'haproxy.cfg');
      writeFileSync(file, renderHaproxy(model, 'nodescale lab'));
      const haproxy = spawnIn(host, ['haproxy', '-f', file, '-db'], {});
      children.push(haproxy.child);
      const check = () => httpCheck(`http://${host.address}:${BALANCER_PORT}/readyz`);
      hosts.push({
        host,
        role: 'balancer',
        runs: `haproxy :${BALANCER_PORT} → ${upstreams.map((api) => api.name).join(', ')}`,
        check,
      });
      await until(check, host.name, 30_000, haproxy.output);
      balancers.push(host.address);
    }

    // Round-robin DNS: the service's name answers with every region's balancer; no health checks (that is the
    // point: a region that is down is still handed out until the record changes).
    const dns = network.host('dns');
    // dnsmasq takes its records on its command line: a record changed (a region out of the name) is a new dnsmasq.
    startDns = async (listed) => {
      if (dnsProcess !== null) {
        const old = dnsProcess.child;
        await new Promise<void>((resolve) => {
          if (old.exitCode !== null || old.signalCode !== null) return resolve();
          old.once('exit', () => resolve());
          old.kill('SIGTERM');
        });
      }
      dnsProcess = spawnIn(
        dns,
        [
          'dnsmasq',
          '--keep-in-foreground',
          '--no-resolv',
          '--no-hosts',
          '--bind-interfaces',
          `--listen-address=${dns.address}`,
          '--local-ttl=1',
          '--pid-file=',
          '--user=root',
          ...listed.map((address) => `--host-record=${SERVICE_NAME},${address}`),
          ...[...network.hosts.values()].map((host) => `--host-record=${host.name}.lab,${host.address}`),
        ],
        {},
      );
      children.push(dnsProcess.child);
      inDns = [...listed];
      await until(resolve, 'dns', 15_000, dnsProcess.output);
    };
    const resolve = async () => {
      const resolver = new Resolver({ timeout: 1_000, tries: 1 });
      resolver.setServers([dns.address]);
      try {
        const answers = await resolver.resolve4(SERVICE_NAME);
        return answers.length === inDns.length ? 'ok' : `answers ${answers.join(', ')}`;
      } catch (error) {
        return `no answer (${(error as NodeJS.ErrnoException).code})`;
      }
    };
    const dnsHost: FleetHost = {
      host: dns,
      role: 'dns',
      get runs() {
        return `dnsmasq :53: ${SERVICE_NAME} → ${inDns.join(', ')}`;
      },
      check: resolve,
    };
    hosts.push(dnsHost);
    await startDns(balancers);
    // Every host asks the lab's DNS (the hosts files still answer the hosts' own names first).
    for (const host of [...network.hosts.values()])
      host.ns.etcFile('resolv.conf', `nameserver ${dns.address}\noptions timeout:1 attempts:1\n`);
    log(`dns: ${SERVICE_NAME} → ${balancers.join(', ')} (dnsmasq on ${dns.address})`);
  } catch (error) {
    await stop();
    throw error;
  }
  const fleetBalancers = hosts.filter((entry) => entry.role === 'balancer').map((entry) => entry.host.address);
  const order: Role[] = ['balancer', 'wan', 'api', 'compute', 'broker', 'redis', 'corpus', 'dns', 'generator'];
  hosts.sort((a, b) => a.host.region - b.host.region || order.indexOf(a.role) - order.indexOf(b.role));
  return {
    network,
    hosts,
    service: {
      name: SERVICE_NAME,
      dns: network.host('dns').address,
      balancers: hosts.filter((entry) => entry.role === 'balancer').map((entry) => entry.host.address),
    },
    status: () =>
      Promise.all(
        hosts.map(async ({ host, role, runs, check }) => ({
          name: host.name,
          region: host.region,
          address: host.address,
          role,
          runs,
          health: network.isPartitioned(host.name) ? `partitioned (${await check()})` : await check(),
        })),
      ),
    fault: async (kind, target, rttMs = 0) => {
      const region = /^region(\d+)$/.exec(target);
      if (kind === 'latency') {
        const control = region ? relays.get(Number(region[1])) : undefined;
        if (control === undefined)
          throw new NodescaleError(
            'NS_ERR_LAB',
            `latency takes a region other than the first, whose link to the shared tier it delays (${[...relays.keys()].map((r) => `region${r}`).join(', ') || 'this lab has one region'})`,
          );
        const response = await fetch(`http://${control}/latency?rttMs=${rttMs}`, { method: 'PUT' });
        if (response.status !== 200) throw new NodescaleError('NS_ERR_LAB', `latency: ${await response.text()}`);
        return rttMs === 0
          ? `the link between ${target} and the shared tier has no added delay`
          : `the link between ${target} and the shared tier adds ${rttMs} ms to each round trip (a delaying TCP relay: this kernel has no netem)`;
      }
      const targets = region
        ? [...network.hosts.values()].filter((host) => host.region === Number(region[1]))
        : [network.host(target)];
      if (targets.length === 0) throw new NodescaleError('NS_ERR_LAB', `the lab has no host in ${target}`);
      if (kind === 'dns-out' || kind === 'dns-in') {
        const balancer = region
          ? hosts.find((entry) => entry.role === 'balancer' && entry.host.region === Number(region[1]))
          : undefined;
        if (balancer === undefined)
          throw new NodescaleError('NS_ERR_LAB', `${kind} takes a region of the lab (region1, region2…)`);
        const address = balancer.host.address;
        const listed =
          kind === 'dns-out'
            ? inDns.filter((entry) => entry !== address)
            : [...new Set([...inDns, address])].sort((a, b) => fleetBalancers.indexOf(a) - fleetBalancers.indexOf(b));
        if (listed.length === 0)
          throw new NodescaleError('NS_ERR_LAB', `${SERVICE_NAME} would answer with no balancer`);
        await startDns(listed);
        return `${SERVICE_NAME} now answers ${listed.join(', ')} (${target}'s balancer ${kind === 'dns-out' ? 'taken out' : 'back'}; clients that asked in the last second keep their answer: the TTL is 1 s)`;
      }
      if (region && kind !== 'partition' && kind !== 'heal')
        throw new NodescaleError('NS_ERR_LAB', `a region takes partition or heal; ${kind} takes one host`);
      for (const host of targets) {
        if (kind === 'partition') network.partition(host.name);
        else if (kind === 'heal') network.heal(host.name);
        else if (kind === 'kill') await killEveryProcessIn(host.ns.name);
        else signalEveryProcessIn(host.ns.name, kind === 'freeze' ? 'SIGSTOP' : 'SIGCONT');
      }
      const names = targets.map((host) => host.name).join(', ');
      return {
        kill: `killed every process on ${names} (SIGKILL): it stays down`,
        freeze: `froze every process on ${names} (SIGSTOP): connections stay open, nothing answers; thaw to resume`,
        thaw: `resumed every process on ${names} (SIGCONT)`,
        partition: `cut ${names} off the network (link down at the router): its processes run on, unreachable`,
        heal: `joined ${names} to the network again`,
      }[kind];
    },
    stop,
  };
}
