/**
 * `nodescale lab up | status | fault | down`: the fleet lab (src/lab/fleet.ts) for people evaluating a fleet. `up`
 * builds it and stays in the foreground, owning every process and namespace of it, until Ctrl-C or `lab down`; the
 * other subcommands speak to it over a root-only Unix socket beside its slot's lock file
 * (/run/nodescale-lab/control-<slot>.sock, 0600), one JSON line each way.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { NodescaleError, isNodescaleError, type ErrorCode } from '../errors.ts';
import {
  FAULT_KINDS,
  FLEET_DEFAULTS,
  FLEET_LIMITS,
  startFleet,
  type FaultKind,
  type Fleet,
  type FleetSpec,
  type HostStatus,
} from '../lab/fleet.ts';
import { fileURLToPath } from 'node:url';
import { namespaceOf, SLOT_DIR } from '../lab/network.ts';
import { MAX_RTT_MS } from '../lab/wan-relay.ts';
import { parseDuration } from '../units.ts';
import { namespacesUnavailable } from '../servers/netns.ts';
import { boolFlag, COMMON_FLAGS, intFlag, parseCommandLine, textFlag, type OptionSpecs } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  regions: { type: 'string' },
  'api-hosts': { type: 'string' },
  'compute-hosts': { type: 'string' },
  'broker-nodes': { type: 'string' },
  'redis-nodes': { type: 'string' },
  'api-cpu': { type: 'string' },
  slot: { type: 'string' },
  ...COMMON_FLAGS,
} as const satisfies OptionSpecs;

const D = FLEET_DEFAULTS;

export const help = `Usage: nodescale lab up [--regions N] [--api-hosts N] [--compute-hosts N] [--broker-nodes N] [--redis-nodes N]
       nodescale lab status [--json]
       nodescale lab fault <kill|freeze|thaw|partition|heal> <host | regionN>
       nodescale lab fault latency <regionN> <round trip>
       nodescale lab fault dns-out|dns-in <regionN>
       nodescale lab exec <host> -- <command> [args…]
       nodescale lab down

A fleet of hosts on this machine, each a network namespace with its own address in 198.18.0.0/15 (the range
reserved for benchmarks): per region a balancer (haproxy, nodescale deploy's configuration) in front of API hosts
(nodescale run … tagger --compute amqp), compute hosts (nodescale run … compute-worker tagger); a RabbitMQ cluster,
Redis with Sentinel, the corpus the tagger fetches, and round-robin DNS (dnsmasq: tagger.lab → every balancer).
Root only. \`up\` stays in the foreground until Ctrl-C or \`lab down\`, which remove everything it made.

Up:
      --regions N         regions, each with a balancer, API and compute hosts (default ${D.regions}, at most ${FLEET_LIMITS.regions})
      --api-hosts N       API hosts per region (default ${D.apiHosts})
      --compute-hosts N   compute hosts per region (default ${D.computeHosts})
      --broker-nodes N    RabbitMQ nodes, one host each (default ${D.brokerNodes})
      --redis-nodes N     Redis servers (a master, the others its replicas), a sentinel beside each (default ${D.redisNodes})
      --api-cpu CORES     hold each API host to this share of the CPU (a cgroup: 0.5 is half a core; default none)

Faults:
  kill H                  every process on host H, SIGKILL: it stays down
  freeze H, thaw H        SIGSTOP / SIGCONT every process on H: a frozen peer is not a dead one
  partition H, heal H     H's link down at the router / up again (partition region2: the whole region)
  latency regionN 40ms    the region's link to the shared tier adds 40 ms to each round trip (0 removes it): a
                          delaying TCP relay, this kernel having no netem qdisc
  dns-out regionN, dns-in regionN
                          the region's balancer out of the service's name (tagger.lab), or back in: round-robin
                          DNS has no health checks, a person (or a script) changes the record

Exec:
  exec H -- CMD           runs CMD on host H (its namespace, address and DNS), here in the foreground, and exits
                          with its status; \`nodescale\` as CMD is this nodescale. The generator host \`gen\` is
                          there for load: lab exec gen -- nodescale bench http://tagger.lab/… (the name resolves
                          to every region's balancer, round-robin)

Options:
      --slot N            the lab to speak to when several run (default: the one that runs)
      --json              status as JSON
  -h, --help              this help

Examples:
  sudo nodescale lab up --regions 2 --api-hosts 2
  sudo nodescale lab status
  sudo nodescale lab exec gen -- nodescale bench http://tagger.lab/benchmark/get-urls -c 32 -d 30s
  sudo nodescale bench http://198.18.1.8/benchmark/get-urls -c 32 -d 30s     # a region's balancer, from this machine
  sudo nodescale lab fault kill r1-api1
  sudo nodescale lab down`;

const count = (values: Parameters<typeof intFlag>[0], flag: string, fallback: number, min: number, max: number) => {
  const value = intFlag(values, flag) ?? fallback;
  if (value < min || value > max)
    throw new NodescaleError('NS_ERR_INVALID_OPTION', `--${flag} must be ${min} to ${max} (got ${value})`);
  return value;
};

/** --api-cpu: cores, 0.05 to 64, or null when not given. */
function cpuShare(raw: string | undefined): number | null {
  if (raw === undefined) return null;
  const cores = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || cores < 0.05 || cores > 64)
    throw new NodescaleError('NS_ERR_INVALID_OPTION', `--api-cpu must be a number of cores, 0.05 to 64 (got ${raw})`);
  return cores;
}

const controlPath = (slot: number) => path.join(SLOT_DIR, `control-${slot}.sock`);

/** The slot of the lab to speak to: --slot, else the one whose control socket exists. */
function slotOf(values: Parameters<typeof intFlag>[0]): number {
  const given = intFlag(values, 'slot');
  if (given !== undefined) return given;
  const running = existsSync(SLOT_DIR)
    ? readdirSync(SLOT_DIR)
        .map((file) => /^control-(\d+)\.sock$/.exec(file)?.[1])
        .filter((slot): slot is string => slot !== undefined)
        .map(Number)
    : [];
  if (running.length === 0)
    throw new NodescaleError('NS_ERR_LAB', 'no lab is running (start one with: nodescale lab up)');
  if (running.length > 1)
    throw new NodescaleError('NS_ERR_USAGE', `several labs run (slots ${running.join(', ')}): give --slot N`);
  return running[0]!;
}

type Request = { op: 'status' } | { op: 'fault'; kind: FaultKind; target: string; rttMs?: number } | { op: 'down' };
type Reply = { ok: true; status?: HostStatus[]; done?: string } | { ok: false; code: string; message: string };

const MAX_LINE = 64 * 1024;

/** One request to the running lab, one reply (within 60 s: a status checks every host). */
async function ask(slot: number, request: Request): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(controlPath(slot));
    let text = '';
    socket.setTimeout(60_000, () => socket.destroy(new Error('the lab did not answer within 60 s')));
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.length > MAX_LINE) socket.destroy(new Error('the lab answered more than a reply'));
      const end = text.indexOf('\n');
      if (end === -1) return;
      socket.end();
      try {
        resolve(JSON.parse(text.slice(0, end)) as Reply);
      } catch {
        reject(new NodescaleError('NS_ERR_LAB', 'the lab answered something that is not a reply'));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
          ? new NodescaleError('NS_ERR_LAB', `no lab answers in slot ${slot} (${error.code})`)
          : new NodescaleError('NS_ERR_LAB', `the lab in slot ${slot}: ${error.message}`),
      ),
    );
  });
}

function parseRequest(line: string): Request | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  const request = parsed as { op?: unknown; kind?: unknown; target?: unknown };
  if (request?.op === 'status' || request?.op === 'down') return { op: request.op };
  const rttMs = (request as { rttMs?: unknown }).rttMs;
  if (
    request?.op === 'fault' &&
    FAULT_KINDS.includes(request.kind as FaultKind) &&
    typeof request.target === 'string' &&
    request.target.length <= 64 &&
    (rttMs === undefined || (Number.isInteger(rttMs) && (rttMs as number) >= 0 && (rttMs as number) <= MAX_RTT_MS))
  )
    return {
      op: 'fault',
      kind: request.kind as FaultKind,
      target: request.target,
      ...(rttMs === undefined ? {} : { rttMs: rttMs as number }),
    };
  return null;
}

export function formatStatus(status: readonly HostStatus[]): string {
  const rows = [
    ['HOST', 'REGION', 'ADDRESS', 'ROLE', 'HEALTH', 'RUNS'],
    ...status.map((h) => [h.name, String(h.region), h.address, h.role, h.health, h.runs]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '),
    )
    .join('\n');
}

async function up(values: Parameters<typeof intFlag>[0], io: Io): Promise<number> {
  const spec: FleetSpec = {
    regions: count(values, 'regions', D.regions, 1, FLEET_LIMITS.regions),
    apiHosts: count(values, 'api-hosts', D.apiHosts, 1, FLEET_LIMITS.apiHosts),
    computeHosts: count(values, 'compute-hosts', D.computeHosts, 1, FLEET_LIMITS.computeHosts),
    brokerNodes: count(values, 'broker-nodes', D.brokerNodes, 1, FLEET_LIMITS.brokerNodes),
    redisNodes: count(values, 'redis-nodes', D.redisNodes, 1, FLEET_LIMITS.redisNodes),
    apiCpu: cpuShare(textFlag(values, 'api-cpu')),
  };
  const why = namespacesUnavailable();
  if (why !== null) throw new NodescaleError('NS_ERR_LAB', `nodescale lab makes network namespaces: it ${why}`);
  io.stderr.write('lab: starting (RabbitMQ takes about 20 s)\n');
  const fleet: Fleet = await startFleet(spec, (line) => io.stderr.write(`lab: ${line}\n`));
  const control = controlPath(fleet.network.slot);
  rmSync(control, { force: true });
  let down!: () => void;
  const stopped = new Promise<void>((resolve) => (down = resolve));
  const server = net.createServer((socket) => {
    let text = '';
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.length > MAX_LINE) return socket.destroy();
      const end = text.indexOf('\n');
      if (end === -1) return;
      const request = parseRequest(text.slice(0, end));
      const reply = async (): Promise<Reply> => {
        if (request === null) return { ok: false, code: 'NS_ERR_USAGE', message: 'not a lab request' };
        if (request.op === 'status') return { ok: true, status: await fleet.status() };
        if (request.op === 'down') {
          setImmediate(down);
          return { ok: true, done: 'stopping the lab' };
        }
        return { ok: true, done: await fleet.fault(request.kind, request.target, request.rttMs) };
      };
      socket.setTimeout(0);
      reply().then(
        (answer) => socket.end(`${JSON.stringify(answer)}\n`),
        (error: unknown) =>
          socket.end(
            `${JSON.stringify({
              ok: false,
              code: isNodescaleError(error) ? error.code : 'NS_ERR_INTERNAL',
              message: (error as Error).message,
            })}\n`,
          ),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(control, () => resolve());
  });
  chmodSync(control, 0o600);
  io.stdout.write(`${formatStatus(await fleet.status())}\n\n`);
  io.stdout.write(
    [
      `the service: http://${fleet.service.name}/ (DNS at ${fleet.service.dns}: dig @${fleet.service.dns} ${fleet.service.name})`,
      ...fleet.service.balancers.map(
        (address, i) => `region ${i + 1}'s balancer: http://${address}/benchmark/get-tags`,
      ),
      `lab ready (slot ${fleet.network.slot}): nodescale lab status | fault … | down; Ctrl-C stops it`,
      '',
    ].join('\n'),
  );
  io.signal.addEventListener('abort', () => down(), { once: true });
  // SIGTERM (a service manager, a test's cleanup) and SIGHUP (the terminal closed) take the lab down as Ctrl-C does:
  // their default would end this process and leave every namespace and process of the lab behind.
  const signals = ['SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, down);
  await stopped;
  for (const signal of signals) process.off(signal, down);
  io.stderr.write('lab: stopping: every process, namespace and directory it made\n');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(control, { force: true });
  await fleet.stop();
  io.stderr.write('lab: down\n');
  return 0;
}

const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));

/** `lab exec H -- CMD…`: CMD in host H's namespace (`ip netns exec`, which also gives it the host's /etc/netns files:
 * the lab's DNS and hosts), stdio this terminal's; its exit status, or 128 + its signal's number. */
async function exec(
  values: Parameters<typeof intFlag>[0],
  positionals: string[],
  command: string[],
  io: Io,
): Promise<number> {
  const [host, ...extra] = positionals;
  if (host === undefined || extra.length > 0 || command.length === 0)
    throw new NodescaleError('NS_ERR_USAGE', 'lab exec <host> -- <command> [args…]');
  const slot = slotOf(values);
  const reply = await ask(slot, { op: 'status' });
  if (!reply.ok) throw new NodescaleError(reply.code as ErrorCode, reply.message);
  const names = reply.status!.map((entry) => entry.name);
  if (!names.includes(host))
    throw new NodescaleError('NS_ERR_LAB', `the lab has no host ${host}: its hosts are ${names.join(', ')}`);
  const [program, ...args] = command[0] === 'nodescale' ? [process.execPath, BIN, ...command.slice(1)] : command;
  const child = spawn('ip', ['netns', 'exec', namespaceOf(slot, host), program!, ...args], { stdio: 'inherit' });
  // Ctrl-C reaches the command (the terminal's process group) and this process alike: this one waits for it.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    if (signal !== null) io.stderr.write(`lab exec: ${command[0]} ended by ${signal}\n`);
    return code ?? 128 + (os.constants.signals[signal!] ?? 0);
  } finally {
    process.off('SIGINT', ignore);
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  // What follows -- is exec's command, never lab's flags.
  const split = argv.indexOf('--');
  const { values, positionals } = parseCommandLine('lab', split === -1 ? argv : argv.slice(0, split), FLAGS, 4);
  const [sub, ...rest] = positionals;
  if (process.getuid?.() !== 0)
    throw new NodescaleError('NS_ERR_LAB', 'nodescale lab runs as root: it makes network namespaces (ip netns)');
  if (sub === 'exec') return exec(values, rest, split === -1 ? [] : argv.slice(split + 1), io);
  if (split !== -1) throw new NodescaleError('NS_ERR_USAGE', 'lab: only lab exec takes a command after --');
  if (sub === 'up') {
    if (rest.length > 0) throw new NodescaleError('NS_ERR_USAGE', `lab up takes no argument (got ${rest.join(' ')})`);
    return up(values, io);
  }
  if (sub === 'status' || sub === 'down') {
    if (rest.length > 0)
      throw new NodescaleError('NS_ERR_USAGE', `lab ${sub} takes no argument (got ${rest.join(' ')})`);
    const slot = slotOf(values);
    const reply = await ask(slot, { op: sub });
    if (!reply.ok) throw new NodescaleError(reply.code as ErrorCode, reply.message);
    if (sub === 'down') {
      // Returns once the lab has removed everything: its slot's lock file goes last.
      const deadline = Date.now() + 120_000;
      while (existsSync(path.join(SLOT_DIR, `slot-${slot}`)) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 200));
      io.stdout.write('lab: down\n');
      return 0;
    }
    io.stdout.write(
      boolFlag(values, 'json') ? `${JSON.stringify(reply.status, null, 2)}\n` : `${formatStatus(reply.status!)}\n`,
    );
    return 0;
  }
  if (sub === 'fault') {
    const [kind, target, value] = rest;
    if (!FAULT_KINDS.includes(kind as FaultKind) || target === undefined)
      throw new NodescaleError('NS_ERR_USAGE', `lab fault <${FAULT_KINDS.join('|')}> <host | regionN> [round trip]`);
    if ((kind === 'latency') !== (value !== undefined))
      throw new NodescaleError(
        'NS_ERR_USAGE',
        kind === 'latency'
          ? 'lab fault latency <regionN> <round trip>: the delay to add (40ms; 0 removes it)'
          : `lab fault ${kind} takes a host or a region, nothing more`,
      );
    const rttMs = value === undefined ? undefined : Math.round(parseDuration('latency', value === '0' ? '0ms' : value));
    if (rttMs !== undefined && rttMs > MAX_RTT_MS)
      throw new NodescaleError('NS_ERR_INVALID_OPTION', `latency must be at most ${MAX_RTT_MS} ms (got ${rttMs})`);
    const reply = await ask(slotOf(values), {
      op: 'fault',
      kind: kind as FaultKind,
      target,
      ...(rttMs === undefined ? {} : { rttMs }),
    });
    if (!reply.ok) throw new NodescaleError(reply.code as ErrorCode, reply.message);
    io.stdout.write(`lab: ${reply.done}\n`);
    return 0;
  }
  throw new NodescaleError('NS_ERR_USAGE', 'lab: give up, status, fault, exec or down (nodescale lab --help)');
}

export const labCommand: Command = { name: 'lab', help, run };
