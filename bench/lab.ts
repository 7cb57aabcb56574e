/**
 * The fleet lab's scaling table (docs/lab.md): get-urls through one region's haproxy with 1, 2 and 4 API hosts, each
 * held to the same share of the CPU by a cgroup, so that on a two-core machine the figures are those of small
 * machines, not of two cores shared by everything. Beside each figure, the CPU each tier used during the run (from
 * /proc, every process of each host), which says where the next bottleneck is: the API hosts at their quota, or
 * haproxy, Redis, the generator. Ratios to one host, never absolute req/s. And one host loaded with each bigger
 * fleet's share of the connections (SpreadRow), for why a host adds less than a host's worth. Root only.
 *
 *   npm run bench -- lab
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { startFleet, type FleetHost } from '../src/lab/fleet.ts';
import { runBench } from '../src/loadtest/run.ts';
import { namespacesUnavailable, pidsIn } from '../src/servers/netns.ts';

export interface ScalingRow {
  apiHosts: number;
  requestsPerSecond: number;
  ratioToOne: number;
  /**
   * On paper, from the one-host run: each tier's CPU per request, and what each can give (the API hosts their
   * quota each, every other tier one core, the machine all of its cores); the least of them, ÷ the one-host figure.
   */
  predictedRatio: number;
  /** The tier that bounds the prediction. */
  predictedBound: string;
  p99Ms: number;
  errors: number;
  /** Cores used during the measured run, by tier. */
  cpu: Record<string, number>;
  /** Requests per second of API CPU: what one API core did in this run. */
  requestsPerApiCore: number;
}

/**
 * One API host loaded with fewer connections, as many as each host of a bigger fleet gets (32 ÷ hosts): if its
 * requests per API core fall as they do per host in the bigger fleets, what costs the throughput is fewer requests at
 * once in each process, measured rather than reasoned.
 */
export interface SpreadRow {
  connections: number;
  requestsPerApiCore: number;
}

export interface ScalingTable {
  rows: ScalingRow[];
  spread: SpreadRow[];
}

const TICK_S = 0.01; // USER_HZ: /proc's clock ticks are 1/100 s on Linux

/** utime + stime of a process, seconds; 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_S;
  } catch {
    return 0;
  }
}

/** Every process of every host, by tier (its role), with the generator (this process) beside them. */
function cpuByTier(hosts: readonly FleetHost[]): Map<number, string> {
  const tiers = new Map<number, string>();
  for (const { host, role } of hosts) for (const pid of pidsIn(host.ns.name)) tiers.set(pid, role);
  tiers.set(process.pid, 'generator');
  return tiers;
}

export async function labScaling(options: {
  seconds: number;
  cores: number;
  hosts: number[];
}): Promise<ScalingTable | string> {
  const why = namespacesUnavailable();
  if (why !== null) return `skipped: the lab ${why}`;
  const rows: ScalingRow[] = [];
  const spread: SpreadRow[] = [];
  for (const apiHosts of options.hosts) {
    const fleet = await startFleet({
      regions: 1,
      apiHosts,
      computeHosts: 1,
      brokerNodes: 1,
      redisNodes: 1,
      apiCpu: options.cores,
    });
    try {
      const balancer = fleet.service.balancers[0]!;
      // Something in the index for get-urls to read (the corpus's benchmark tag).
      for (let i = 0; i < 4; i++) await (await fetch(`http://${balancer}/benchmark/get-tags`)).arrayBuffer();
      const url = `http://${balancer}/benchmark/get-urls`;
      await runBench({ url, connections: 32, durationMs: 2_000 }); // warm: JIT, connections, haproxy's checks
      const tiers = cpuByTier(fleet.hosts);
      const measure = async (connections: number) => {
        const before = new Map([...tiers.keys()].map((pid) => [pid, cpuSeconds(pid)]));
        const started = performance.now();
        const result = await runBench({ url, connections, durationMs: options.seconds * 1000 });
        const elapsed = (performance.now() - started) / 1000;
        const cpu: Record<string, number> = {};
        for (const [pid, tier] of tiers) cpu[tier] = (cpu[tier] ?? 0) + (cpuSeconds(pid) - before.get(pid)!) / elapsed;
        return { result, cpu, requestsPerApiCore: result.requests.perSecond / (cpu.api ?? Number.NaN) };
      };
      const { result, cpu, requestsPerApiCore } = await measure(32);
      if (apiHosts === options.hosts[0])
        for (const hosts of options.hosts)
          spread.push({
            connections: 32 / hosts,
            requestsPerApiCore:
              hosts === apiHosts ? requestsPerApiCore : (await measure(32 / hosts)).requestsPerApiCore,
          });
      rows.push({
        apiHosts,
        requestsPerSecond: result.requests.perSecond,
        ratioToOne: 0,
        predictedRatio: 0,
        predictedBound: '',
        p99Ms: result.latencyMs.p99,
        errors: result.errors.total,
        cpu,
        requestsPerApiCore,
      });
    } finally {
      await fleet.stop();
    }
  }
  const one = rows[0]!;
  const perRequest = Object.fromEntries(
    Object.entries(one.cpu).map(([tier, cores]) => [tier, cores / one.requestsPerSecond]),
  );
  const machine = os.availableParallelism();
  const total = Object.values(perRequest).reduce((sum, value) => sum + value, 0);
  for (const row of rows) {
    row.ratioToOne = row.requestsPerSecond / one.requestsPerSecond;
    const bounds: [string, number][] = [
      ...Object.entries(perRequest).map(
        ([tier, cpu]) => [tier, (tier === 'api' ? row.apiHosts * options.cores : 1) / cpu] as [string, number],
      ),
      ['the machine', machine / total],
    ];
    const [bound, rps] = bounds.reduce((least, entry) => (entry[1] < least[1] ? entry : least));
    row.predictedRatio = rps / one.requestsPerSecond;
    row.predictedBound = bound;
  }
  return { rows, spread };
}
