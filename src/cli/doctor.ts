/**
 * `nodescale doctor`: this machine, a running process and the balancer's timeout chain checked for serving many
 * connections (src/deploy/doctor.ts, timeout-chain.ts). Each finding: what was found, why it matters, the fix.
 * Exit 1 when something fails; warnings alone exit 0.
 */
import { readFileSync } from 'node:fs';
import { diagnose, type Finding } from '../deploy/doctor.ts';
import { checkFrontToNode, checkTimeoutChain, liveTimeouts, type LiveWorkerServers } from '../deploy/timeout-chain.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { boolFlag, COMMON_FLAGS, durationFlag, intFlag, parseCommandLine, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';
import { connectSupervisor } from '../supervisor/control.ts';
import { controlPath } from './supervise.ts';

const FLAGS = {
  connections: { type: 'string', short: 'c' },
  workers: { type: 'string', short: 'w' },
  pid: { type: 'string' },
  name: { type: 'string' },
  control: { type: 'string' },
  proxy: { type: 'string' },
  'idle-timeout': { type: 'string' },
  'keep-alive-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  ...COMMON_FLAGS,
} as const;

export const help = `Usage: nodescale doctor [options]

This machine checked for serving many connections: open files, the accept and SYN queues against Node's listen
backlog (511), local ports and TIME_WAIT reuse for a balancer or a load generator, CPUs against the workers, swap.
With --proxy, the timeout chain: on every hop that reuses idle connections, the side that reuses gives up first;
with --name, against the timeouts the app's workers have now (read through nodescale run's control socket).
Each finding says what was found, why it matters, and the exact fix. Exit 1 when something fails.

Options:
  -c, --connections N       connections one process is to hold at once (default 10000)
  -w, --workers N           workers on this machine (nodescale run -w; default: the usable CPUs)
      --pid N               check this running process's own limits (/proc/N/limits)
      --name APP            an app under nodescale run: its workers' limits, and their live HTTP timeouts
      --control PATH        the same, by its control socket
      --proxy FILE          the balancer's nginx.conf or haproxy.cfg: its timeouts against Node's
      --idle-timeout NAME=DUR  a balancer in front of it, and its idle timeout (alb=60s)
      --keep-alive-timeout DUR  Node's keepAliveTimeout (default 5s, Node's own; with --name, the app's)
      --request-timeout DUR     Node's requestTimeout (default 300s, Node's own; with --name, the app's)
      --json                one JSON object: { ok, findings }
  -h, --help                this help

Examples:
  nodescale doctor -c 20000
  nodescale doctor --proxy /etc/nginx/nginx.conf --idle-timeout alb=60s
  nodescale doctor --name api --proxy /etc/haproxy/haproxy.cfg`;

function front(text: string | undefined): { name: string; idleMs: number } | undefined {
  if (text === undefined) return undefined;
  const match = /^([\w-]+)=(\d+(?:ms|s|m))$/.exec(text);
  if (match === null) throw invalidOption('--idle-timeout', 'NAME=DURATION (alb=60s)', text);
  const [, name, value] = match;
  const ms = Number(/^\d+/.exec(value!)![0]) * (value!.endsWith('ms') ? 1 : value!.endsWith('m') ? 60_000 : 1000);
  return { name: name!, idleMs: ms };
}

export function parseDoctorArgs(argv: string[]) {
  const { values } = parseCommandLine('doctor', argv, FLAGS, 0);
  const connections = intFlag(values, 'connections') ?? 10_000;
  if (!(connections >= 1)) throw invalidOption('--connections', 'a whole number ≥ 1', connections);
  const workers = intFlag(values, 'workers');
  if (workers !== undefined && !(workers >= 1)) throw invalidOption('--workers', 'a whole number ≥ 1', workers);
  const pid = intFlag(values, 'pid');
  const app = textFlag(values, 'name') ?? textFlag(values, 'control');
  const keepAliveMs = durationFlag(values, 'keep-alive-timeout');
  const requestTimeoutMs = durationFlag(values, 'request-timeout');
  if (app !== undefined && (keepAliveMs !== undefined || requestTimeoutMs !== undefined))
    throw new NodescaleError(
      'NS_ERR_USAGE',
      "--name reads the app's own timeouts: give --keep-alive-timeout and --request-timeout without it",
    );
  return {
    connections,
    workers,
    pid,
    /** The control socket of the app named by --name or --control, if any. */
    control: app === undefined ? undefined : controlPath(values, null),
    app,
    proxy: textFlag(values, 'proxy'),
    front: front(textFlag(values, 'idle-timeout')),
    keepAliveMs: keepAliveMs ?? 5000,
    requestTimeoutMs: requestTimeoutMs ?? 300_000,
    json: boolFlag(values, 'json'),
  };
}

/** What the app's supervisor says of its workers' HTTP servers (its control socket's `servers`). */
async function askServers(control: string): Promise<{ pid: number; workers: (LiveWorkerServers & { pid: number })[] }> {
  const client = await connectSupervisor(control);
  try {
    return (await client.request('servers', {})) as { pid: number; workers: (LiveWorkerServers & { pid: number })[] };
  } finally {
    client.close();
  }
}

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

function view(findings: Finding[]): string {
  return findings
    .map((f) => {
      const lines = [`${MARK[f.severity]}  ${f.check}: ${f.found}`];
      if (f.severity !== 'ok') lines.push(`      why: ${f.why}`, `      fix: ${f.fix}`);
      return lines.join('\n');
    })
    .join('\n');
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseDoctorArgs(argv);
  const { usableCpus } = await import('../supervisor/cpus.ts');
  const live = args.control === undefined ? undefined : await askServers(args.control);
  const read = live === undefined ? undefined : liveTimeouts(args.app!, live.workers);
  // The workers hold the connections: their limits are the ones that count.
  const pid = args.pid ?? live?.workers[0]?.pid;
  const findings = diagnose({
    connections: args.connections,
    workers: args.workers ?? live?.workers.length ?? usableCpus(),
    ...(pid === undefined ? {} : { pid }),
  });
  if (read !== undefined) findings.push(read.finding);
  const keepAliveMs = read?.keepAliveMs ?? args.keepAliveMs;
  const requestTimeoutMs = read?.requestTimeoutMs ?? args.requestTimeoutMs;
  if (args.proxy === undefined && args.front !== undefined) findings.push(checkFrontToNode(args.front, keepAliveMs));
  if (args.proxy !== undefined) {
    let text: string;
    try {
      text = readFileSync(args.proxy, 'utf8');
    } catch (error) {
      throw new NodescaleError(
        'NS_ERR_DOCTOR_PROXY',
        `--proxy ${args.proxy}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    const kind = /^\s*(frontend|backend|defaults|listen)\b/m.test(text) ? 'haproxy' : 'nginx';
    findings.push(
      ...checkTimeoutChain({
        text,
        kind,
        nodeKeepAliveMs: keepAliveMs,
        nodeRequestTimeoutMs: requestTimeoutMs,
        ...(args.front === undefined ? {} : { front: args.front }),
      }),
    );
  }
  const ok = findings.every((f) => f.severity !== 'fail');
  io.stdout.write(args.json ? `${JSON.stringify({ ok, findings })}\n` : `${view(findings)}\n`);
  return ok ? 0 : 1;
}

export const doctorCommand: Command = { name: 'doctor', help, run };
