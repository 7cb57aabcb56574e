/**
 * `npm run bench`: every performance figure of the README, measured side by side in one run. Figures are ratios
 * (ours ÷ wrk's, one server ÷ another), never absolute req/s: the machine is shared and its speed is not ours.
 *
 *   npm run bench                  all benchmarks, default lengths
 *   npm run bench -- --quick       shorter runs (a smoke test of the harness, not figures to quote)
 *   npm run bench -- generator     one benchmark by name (generator, servers, runtime, supervisor, tagger, amqp,
 *                                  amqp-clients, redis, redis-wait, scale-out, somaxconn,
 *                                  rollback, lab, lab-faults, dashboard, stall)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { compareServers } from '../src/compare/servers.ts';
import { formatCompareTable } from '../src/compare/report.ts';
import { amqpTransport, type AmqpFigures } from './amqp.ts';
import { amqpClients } from './amqp-clients.ts';
import { BENCH_DIR, installBenchTools } from './lib.ts';
import { generatorCost } from './generator-cost.ts';
import {
  defaultsUnderStress,
  overheadFloor,
  protectOverhead,
  sheddingUnderOverload,
  type PairedFigures,
} from './runtime.ts';
import { reloadUnderLoad, runOverhead } from './supervisor.ts';
import { redisClients, scaleOutSplit, storeGetUrls } from './redis.ts';
import { dashboardCost } from './dashboard.ts';
import { labFaults } from './lab-faults.ts';
import { labScaling } from './lab.ts';
import { redisWait } from './redis-wait.ts';
import { rollbackMemory } from './rollback.ts';
import { somaxconnTable } from './somaxconn.ts';
import { stallCost } from './stall.ts';
import { taggerSplit } from './tagger.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));
const wanted = (name: string) => only.length === 0 || only.includes(name);

mkdirSync(path.join(BENCH_DIR, 'results'), { recursive: true });
const report: Record<string, unknown> = { date: new Date().toISOString(), node: process.version, quick };
const lines: string[] = [];

if (wanted('generator')) {
  console.error(
    'generator cost: nodescale bench vs wrk -t1 vs autocannon, 64 connections, raw net target, plain and TLS; a 60-request file vs one URL',
  );
  const costs = await generatorCost({ seconds: quick ? 2 : 8, rounds: quick ? 1 : 3 });
  report.generator = costs;
  lines.push(
    'Generator CPU per completed request, 64 connections, `nodescale hello tcp` target (median of rounds):',
    '',
  );
  lines.push('| mode | tool | µs CPU / request | ÷ wrk (requests file: ÷ one URL) |', '|---|---|---|---|');
  for (const c of costs)
    lines.push(
      `| ${c.mode} | ${c.tool} | ${c.cpuMicrosPerRequest.toFixed(2)} | ${c.ratioToWrk === null ? '—' : c.ratioToWrk.toFixed(2)} |`,
    );
  lines.push('');
}

if (wanted('servers')) {
  console.error('servers: tcp vs http vs fastify vs express');
  const result = await compareServers({
    connections: 64,
    durationMs: quick ? 1000 : 5000,
    warmupMs: 1000,
    rounds: quick ? 1 : 3,
  });
  report.servers = result.servers.map(({ runs: _runs, ...figures }) => figures);
  lines.push(
    'Hello World servers, 64 connections (`nodescale compare-servers`):',
    '',
    '```',
    formatCompareTable(result),
    '```',
    '',
  );
}

if (wanted('runtime')) {
  console.error('runtime: protect() overhead on a hello world, and the same comparison of two unprotected servers');
  const overhead = await protectOverhead({
    seconds: quick ? 1 : 3,
    rounds: quick ? 1 : 4,
    pairs: quick ? 2 : 4,
    check: true,
  });
  console.error('runtime: protect() overhead on a route doing 0.1 ms of CPU work');
  const routeOverhead = await protectOverhead({
    seconds: quick ? 1 : 3,
    rounds: quick ? 1 : 4,
    pairs: quick ? 2 : 4,
    blockMs: 0.1,
  });
  console.error('runtime: the floor under the overhead: a minimal instrument that only times each request');
  const floor = await overheadFloor({ seconds: quick ? 1 : 3, rounds: quick ? 1 : 4, pairs: quick ? 2 : 4 });
  console.error('runtime: shedding at 4x the knee of a CPU-bound route');
  const shedding = await sheddingUnderOverload({ seconds: quick ? 4 : 10 });
  console.error('runtime: the defaults, old and new, on one slow second and on ten times the knee');
  const defaults = await defaultsUnderStress({ seconds: quick ? 4 : 8 });
  report.runtime = { overhead, routeOverhead, floor, shedding, defaults };
  const cell = (f: PairedFigures, cpu = true) =>
    `**${f.throughputRatio.toFixed(3)}**${cpu ? ` (CPU per request ${f.cpuMicrosPerRequest.a.toFixed(1)} → ${f.cpuMicrosPerRequest.b.toFixed(1)} µs)` : ''}`;
  lines.push(
    'protect() overhead: throughput on ÷ off, both servers pinned to one core and loaded at once by a generator on ' +
      `the other core, median of ${overhead.rounds * overhead.pairs} pairs over ${overhead.rounds} ` +
      `round${overhead.rounds === 1 ? '' : 's'} of fresh server processes (goal ≥ 0.97 at the knee):`,
    '',
    `| | at the knee (${overhead.kneeConcurrency} connections; route: ${routeOverhead.kneeConcurrency}) | CPU-bound (${overhead.cpuBound.connections} connections) |`,
    '|---|---|---|',
    `| hello world, protect() on ÷ off | ${cell(overhead.atKnee)} | ${cell(overhead.cpuBound)} |`,
    ...(overhead.check
      ? [
          `| hello world, two unprotected servers (the harness's own error) | ${cell(overhead.check.atKnee, false)} | ${cell(overhead.check.cpuBound, false)} |`,
        ]
      : []),
    `| route doing ${routeOverhead.blockMs} ms of CPU work, protect() on ÷ off | ${cell(routeOverhead.atKnee)} | ${cell(routeOverhead.cpuBound)} |`,
    `| hello world (bench server), a minimal instrument that only times each request ÷ none: the floor | | ${cell(floor.floor)} |`,
    `| hello world (bench server), protect() ÷ that minimal instrument: what protect() adds to the floor | | ${cell(floor.aboveFloor)} |`,
    '',
    `Shedding, ${shedding.blockMs} ms CPU-bound route, open model at 4× its knee throughput (${Math.round(shedding.offeredRate)} req/s; knee p99 ${shedding.knee.p99Ms} ms):`,
    '',
    '| | p99 of served requests | ÷ knee p99 | served | shed |',
    '|---|---|---|---|---|',
    `| protect({ overload: { maxLagMs: knee p99 ÷ 2 } }) | ${shedding.protectedRun.p99Ms2xx} ms | **${shedding.protectedRun.ratioToKnee.toFixed(2)}** | ${shedding.protectedRun.served} | ${shedding.protectedRun.shed} |`,
    `| unprotected | ${shedding.unprotectedRun.p99Ms2xx} ms | ${shedding.unprotectedRun.ratioToKnee.toFixed(1)} | ${shedding.unprotectedRun.served} | 0 |`,
    '',
    `The defaults, before (enterAfterSamples 1, exitAfterSamples 2, no lag limit) and now, same ${shedding.blockMs} ms route:`,
    '',
    '| | before | now |',
    '|---|---|---|',
    `| one 1 s stall at ${defaults.oneSlowSecond.rate} req/s (half the knee): requests refused | ${defaults.oneSlowSecond.old.shed} | **${defaults.oneSlowSecond.now.shed}** |`,
    `| the same: p99 of served requests | ${defaults.oneSlowSecond.old.p99Ms} ms | ${defaults.oneSlowSecond.now.p99Ms} ms |`,
    '',
    `Overload over 200 connections, /healthz probed every 200 ms on a new connection with a 1 s timeout (a Kubernetes liveness probe); before: without the smaller turn budget while shedding (shedLagMs 0), now: the defaults (shedLagMs 50):`,
    '',
    '| | before | now |',
    '|---|---|---|',
    ...(
      [
        ['ten times the knee', defaults.tenTimes],
        ['four times the knee', defaults.fourTimes],
      ] as const
    ).flatMap(([what, f]) => [
      `| ${what} (${f.rate} req/s): probes answered within 1 s | ${f.old.answered} of ${f.old.probes} | **${f.now.answered} of ${f.now.probes}** |`,
      `| the same: probe p50 | ${f.old.probeP50Ms.toFixed(0)} ms | ${f.now.probeP50Ms.toFixed(0)} ms |`,
      `| the same: served, p99 of served | ${f.old.served}, ${f.old.p99Ms} ms | ${f.now.served}, ${f.now.p99Ms} ms |`,
    ]),
    `| four times: served p99 ÷ the knee's p99 (${defaults.fourTimes.kneeP99Ms} ms) | ${(defaults.fourTimes.old.p99Ms / defaults.fourTimes.kneeP99Ms).toFixed(2)} | **${(defaults.fourTimes.now.p99Ms / defaults.fourTimes.kneeP99Ms).toFixed(2)}** |`,
    '',
  );
}

if (wanted('supervisor')) {
  console.error('supervisor: nodescale run -w 2 vs a bare node:cluster, both at once');
  const overhead = await runOverhead({ seconds: quick ? 1 : 3, pairs: quick ? 3 : 7, connections: 16 });
  console.error('supervisor: rolling reloads under load, nodescale run vs pm2');
  const startupMs = 3500;
  const reloads = await reloadUnderLoad({ reloads: quick ? 2 : 5, startupMs, workers: [1, 2], plainWorkers: [2] });
  report.supervisor = { overhead, reloads };
  lines.push(
    `\`nodescale run -w 2\` ÷ bare node:cluster (2 workers), same hello app, 16 connections each, loaded at once, median of ${overhead.pairs} runs: throughput **${overhead.ratio.toFixed(3)}** (goal ≥ 0.98)`,
    '',
    `Rolling reloads under load. protected: an app on nodescale/runtime that takes ${startupMs / 1000} s to get ready before it listens, 8 connections; plain: node:http with server.close(() => process.exit(0)) on SIGTERM and SIGINT, 16 connections:`,
    '',
    '| | app | workers | reloads | reloads failed | requests | failed requests |',
    '|---|---|---|---|---|---|---|',
    ...reloads.map(
      (r) =>
        `| ${r.tool} | ${r.app} | ${r.workers} | ${r.reloads} | ${r.reloadFailures} | ${r.requests} | **${r.failed}**${
          r.failed > 0
            ? ` (${Object.entries(r.errors)
                .filter(([k, v]) => k !== 'total' && typeof v === 'number' && v > 0)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')})`
            : ''
        } |`,
    ),
    '',
  );
}

if (wanted('rollback')) {
  console.error("rollback: the workers' RSS during a reload's probation, --rollback parked vs none");
  const memory = await rollbackMemory({ rounds: quick ? 1 : 3 });
  report.rollback = memory;
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  lines.push(
    "The price of a real rollback: the workers' RSS during a reload's probation ÷ before it, `bench/servers/http.ts` on the runtime, 2 workers (`npm run bench -- rollback`):",
    '',
    '| --rollback | RSS before | RSS on probation | ratio |',
    '|---|---|---|---|',
    ...memory.map(
      (m) => `| ${m.mode} | ${mib(m.beforeBytes)} | ${mib(m.probationBytes)} | **${m.ratio.toFixed(2)}** |`,
    ),
    '',
  );
}

if (wanted('tagger')) {
  console.error('tagger: get-urls latency while get-tags saturates extraction, --compute inline vs pool');
  const split = await taggerSplit({ seconds: quick ? 4 : 15 });
  report.tagger = split;
  lines.push(
    'The tagging API: `/benchmark/get-urls` (an index lookup) probed at 50 req/s (open model) while `/benchmark/get-tags` (fetch + extraction) runs at 8 connections:',
    '',
    '| --compute | get-tags req/s | get-urls p50 | get-urls p99 | event-loop delay p99 (median s / worst s) | errors | CPU per get-tags |',
    '|---|---|---|---|---|---|---|',
    ...split.modes.map(
      (m) =>
        `| ${m.compute} | ${m.getTagsPerSecond.toFixed(0)} | ${m.getUrlsP50Ms} ms | ${m.getUrlsP99Ms} ms | ${m.eventLoopP99Ms.median.toFixed(1)} / ${m.eventLoopP99Ms.max.toFixed(1)} ms | ${m.getTagsErrors + m.getUrlsErrors} | ${Object.entries(
          m.cpuMsPerGetTags,
        )
          .map(([name, ms]) => `${name} ${ms.toFixed(1)} ms`)
          .join(', ')} |`,
    ),
    '',
    `get-urls p99 inline ÷ pool: **${split.p99Ratio.toFixed(1)}** (goal ≥ 10); event-loop delay p99 with the pool, worst second: **${split.modes[1]!.eventLoopP99Ms.max.toFixed(1)} ms** (goal < 20 ms)`,
    '',
    `over amqp: get-urls p99 inline ÷ amqp (quorum) **${split.amqpP99Ratio.toFixed(1)}** (goal ≥ 10); get-tags req/s amqp ÷ pool **${split.amqpThroughputRatio.toFixed(2)}** on a quorum queue, **${split.amqpClassicThroughputRatio.toFixed(2)}** on a classic one (goal ≥ 0.9)`,
    '',
  );
}

if (wanted('amqp')) {
  console.error('amqp: the compute transport vs the bare amqplib RPC loop, one private rabbitmq-server');
  installBenchTools(); // the nats client, for the reference row
  const figures = await amqpTransport({ seconds: quick ? 1 : 5 });
  report.amqp = figures;
  const bare = (f: AmqpFigures) =>
    figures.find((b) => b.variant === 'bare amqplib' && b.queue === f.queue && b.inFlight === f.inFlight);
  const nats = (f: AmqpFigures) =>
    figures.find((b) => b.variant === 'NATS core request-reply' && b.inFlight === f.inFlight)!;
  lines.push(
    'RPC over RabbitMQ, echo of 100 bytes, direct reply-to, prefetch 64 (`npm run bench -- amqp`):',
    '',
    '| queue | variant | in flight | calls/s | ÷ bare amqplib | ÷ NATS | p50 |',
    '|---|---|---|---|---|---|---|',
    ...figures.map((f) => {
      const vsBare = bare(f);
      return `| ${f.queue} | ${f.variant} | ${f.inFlight} | ${f.perSecond.toFixed(0)} | ${vsBare ? (f.perSecond / vsBare.perSecond).toFixed(2) : '—'} | ${(f.perSecond / nats(f).perSecond).toFixed(2)} | ${f.p50Ms.toFixed(2)} ms |`;
    }),
    '',
  );
}

if (wanted('amqp-clients')) {
  console.error('amqp-clients: amqplib vs @cloudamqp/amqp-client vs rabbitmq-client, bare RPC loops');
  installBenchTools();
  const figures = await amqpClients({ seconds: quick ? 1 : 5 });
  report.amqpClients = figures;
  lines.push(
    'Bare RPC loops of three AMQP clients (`npm run bench -- amqp-clients`):',
    '',
    '| queue | client | in flight | calls/s | p50 |',
    '|---|---|---|---|---|',
    ...figures.map(
      (f) => `| ${f.queue} | ${f.client} | ${f.inFlight} | ${f.perSecond.toFixed(0)} | ${f.p50Ms.toFixed(2)} ms |`,
    ),
    '',
  );
}

if (wanted('redis')) {
  console.error('redis: node-redis vs ioredis (get-urls command), and get-urls through the tagger, redis vs embedded');
  installBenchTools(); // ioredis
  const clients = await redisClients({ seconds: quick ? 1 : 3, rounds: quick ? 1 : 3 });
  const store = await storeGetUrls({ seconds: quick ? 2 : 10 });
  report.redis = { clients, store };
  lines.push(
    "The Redis clients on get-urls' command (SMEMBERS of 20 URLs), medians of alternating rounds (`npm run bench -- redis`):",
    '',
    '| client | 1 in flight | p50 | 32 in flight |',
    '|---|---|---|---|',
    ...clients.map(
      (c) => `| ${c.client} | ${c.one.toFixed(0)} | ${c.p50Ms.toFixed(3)} ms | ${c.thirtyTwo.toFixed(0)} |`,
    ),
    '',
    `node-redis ÷ ioredis: **${(clients[0]!.one / clients[1]!.one).toFixed(2)}** at 1 in flight, **${(clients[0]!.thirtyTwo / clients[1]!.thirtyTwo).toFixed(2)}** at 32`,
    '',
    '`/benchmark/get-urls` through one tagger process, 8 connections, closed model:',
    '',
    '| store | req/s | p50 | p99 | errors |',
    '|---|---|---|---|---|',
    ...store.stores.map(
      (f) => `| ${f.store} | ${f.getUrlsPerSecond.toFixed(0)} | ${f.p50Ms} ms | ${f.p99Ms} ms | ${f.errors} |`,
    ),
    '',
    `get-urls req/s, redis ÷ embedded: **${store.ratio.toFixed(2)}**`,
    '',
  );
}

if (wanted('scale-out')) {
  console.error('scale-out: get-urls p99 under get-tags load, demo --scale-out vs the monolith (--compute inline)');
  const split = await scaleOutSplit({ seconds: quick ? 4 : 15 });
  report.scaleOut = split;
  lines.push(
    'get-urls probed at 50 req/s (open model) while get-tags runs at 8 connections (`npm run bench -- scale-out`):',
    '',
    '| | get-tags req/s | get-urls p50 | get-urls p99 | errors |',
    '|---|---|---|---|---|',
    ...split.modes.map(
      (m) =>
        `| ${m.compute === 'inline' ? 'monolith (--compute inline)' : 'demo --scale-out'} | ${m.getTagsPerSecond.toFixed(0)} | ${m.getUrlsP50Ms} ms | ${m.getUrlsP99Ms} ms | ${m.getTagsErrors + m.getUrlsErrors} |`,
    ),
    '',
    `get-urls p99, monolith ÷ scale-out: **${split.p99Ratio.toFixed(1)}** (goal ≥ 10)`,
    '',
  );
}

if (wanted('somaxconn')) {
  console.error("somaxconn: nodescale bench -c 1000 against hello http in a network namespace, at the talk's settings");
  const table = await somaxconnTable({ seconds: quick ? 2 : 5 });
  report.somaxconn = table;
  if (typeof table === 'string') lines.push(`somaxconn: skipped (${table})`, '');
  else
    lines.push(
      `The talk's somaxconn table: \`nodescale bench -c 1000 -d ${quick ? 2 : 5}s\` against \`hello http\` in a network namespace (\`npm run bench -- somaxconn\`):`,
      '',
      '| somaxconn | connections never accepted in time | requests ÷ the 1024 row | p99 of those that got in | doctor |',
      '|---|---|---|---|---|',
      ...table.map(
        (r) =>
          `| ${r.somaxconn} | ${r.neverIn} of ${r.connections} | ${r.requestsRatioTo1024 === null ? '—' : r.requestsRatioTo1024.toFixed(2)} | ${r.p99Ms} ms | ${r.doctor} |`,
      ),
      '',
    );
}

if (wanted('redis-wait')) {
  console.error('redis-wait: acknowledged writes lost when the master dies, with and without WAIT 1');
  const figures = await redisWait({ rounds: quick ? 1 : 3, runMs: quick ? 500 : 1500 });
  report.redisWait = figures;
  lines.push(
    'What Redis replication loses at a failover (`npm run bench -- redis-wait`): 64 SETs in flight, the replica 300 ms behind (stopped) when the master is killed, the replica promoted, every acknowledged key looked for:',
    '',
    '| | acknowledged | missing after the failover | throughput |',
    '|---|---|---|---|',
    `| without WAIT | ${figures.acknowledgedWithout} | ${figures.missingWithout} | 1 |`,
    `| WAIT 1 after each write | ${figures.acknowledgedWith} | ${figures.missingWith} | ${figures.throughputRatio.toFixed(2)} |`,
    '',
  );
}

if (wanted('lab')) {
  const cores = 0.2;
  console.error(`lab: get-urls through one haproxy with 1, 2, 4 API hosts, each held to ${cores} core by a cgroup`);
  const scaling = await labScaling({ seconds: quick ? 3 : 10, cores, hosts: [1, 2, 4] });
  report.lab = scaling;
  if (typeof scaling === 'string') lines.push(`lab: ${scaling}`, '');
  else {
    const { rows: table, spread } = scaling;
    const perCore = (value: number) => (value / table[0]!.requestsPerApiCore).toFixed(2);
    const tiers = ['api', 'balancer', 'redis', 'compute', 'broker', 'generator'];
    lines.push(
      `The fleet lab's scaling table: \`/benchmark/get-urls\` through one region's haproxy, 32 connections, ${quick ? 3 : 10} s, each API host held to ${cores} core (\`npm run bench -- lab\`); CPU used by each tier, in cores:`,
      '',
      `| API hosts | on paper ÷ 1 host (bound by) | in the lab ÷ 1 host | p99 | errors | requests per API core ÷ 1 host | ${tiers.join(' | ')} |`,
      `|---|---|---|---|---|---|${tiers.map(() => '---').join('|')}|`,
      ...table.map(
        (r) =>
          `| ${r.apiHosts} | ${r.predictedRatio.toFixed(2)} (${r.predictedBound}) | ${r.ratioToOne.toFixed(2)} | ${r.p99Ms.toFixed(1)} ms | ${r.errors} | ${perCore(r.requestsPerApiCore)} | ${tiers.map((tier) => (r.cpu[tier] ?? 0).toFixed(2)).join(' | ')} |`,
      ),
      '',
      `One API host with each fleet's share of the 32 connections (${spread.map((s) => s.connections).join(', ')}): requests per API core ÷ at 32, ${spread.map((s) => perCore(s.requestsPerApiCore)).join(', ')}; beside the fleets' ${table.map((r) => perCore(r.requestsPerApiCore)).join(', ')}: where they match, a host adds less than a host's worth because each process has fewer requests at once.`,
      '',
    );
  }
}

if (wanted('dashboard')) {
  console.error('dashboard: two supervisors of 8 workers side by side, one with its dashboard open in Chromium');
  const cost = await dashboardCost({ seconds: quick ? 3 : 10, rounds: quick ? 1 : 3, workers: 8 });
  report.dashboard = cost;
  if (typeof cost === 'string') lines.push(`dashboard: ${cost}`, '');
  else
    lines.push(
      `The dashboard's cost (\`npm run bench -- dashboard\`): 8 workers of the protected hello server, the page open in Chromium, ${cost.rounds.length} rounds side by side with the same supervisor without it, 16 connections each: the supervisor's CPU **+${cost.cpuExtraPercent.toFixed(2)} %** of a core (goal < 2 %), the workers' throughput on ÷ off **${cost.throughputRatio.toFixed(3)}** (goal ≥ 0.99); rounds: ${cost.rounds.map((r) => `+${r.cpuExtraPercent.toFixed(2)} % / ${r.throughputRatio.toFixed(3)}`).join(', ')}.`,
      '',
    );
}

if (wanted('stall')) {
  console.error('stall: the hello server with stall capture on ÷ off; a route blocking 1 s in every 10 requests');
  const stall = await stallCost({
    seconds: quick ? 2 : 5,
    rounds: quick ? 1 : 3,
    pairs: quick ? 1 : 3,
    blocks: quick ? 3 : 10,
  });
  report.stall = stall;
  lines.push(
    `Stall capture (\`npm run bench -- stall\`): the protected hello server with \`stall: true\` ÷ without, side by side at 8 connections, **${stall.throughputRatio.toFixed(3)}** (goal ≥ 0.99; pairs ${stall.throughputRatios.map((r) => r.toFixed(3)).join(', ')}); its RSS **+${stall.rssExtraMiB.toFixed(1)} MiB** (the watchdog thread); a route blocking 1 s once in every 10 requests: **${stall.named} of ${stall.stalls}** captures name its function (goal ≥ 9 of 10), and ${stall.profiled} of their profiles of the rest of the block have it first.`,
    '',
  );
}

if (wanted('lab-faults')) {
  console.error("lab-faults: test/lab/'s scenarios, each a fault under load, with what each measured");
  const rows = await labFaults();
  report.labFaults = rows;
  lines.push(
    "The fleet lab's fault matrix (`npm run bench -- lab-faults`): test/lab/'s scenarios, each run once, with what each measured:",
    '',
    '| scenario | test | result | measured |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.test} | \`${r.file}\` | ${r.outcome}${r.error === undefined ? '' : ` (${r.error})`} | ${r.figures.join('; ').replaceAll('|', '\\|')} |`,
    ),
    '',
  );
}

const file = path.join(BENCH_DIR, 'results', 'latest.json');
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(lines.join('\n'));
console.error(`\nwrote ${file}`);
