/**
 * `nodescale run <app>` (the supervisor) and `nodescale status | reload | stop` (its control commands).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AdminClient } from '../admin/client.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { defaultControlPath, startControl } from '../supervisor/control.ts';
import { usableCpus } from '../supervisor/cpus.ts';
import { RESTART_DEFAULTS } from '../supervisor/restart-policy.ts';
import { Supervisor, type ReloadOutcome, type WorkerStatus } from '../supervisor/supervisor.ts';
import { formatBytes, formatMs } from '../units.ts';
import { boolFlag, COMMON_FLAGS, durationFlag, intFlag, listFlag, parseCommandLine, requirePositional, sizeFlag, textFlag, type OptionSpecs, type Values } from './args.ts';
import type { Command, Io } from './io.ts';
import { renderColumns } from '../loadtest/report/text.ts';

const CONTROL_FLAGS = {
  name: { type: 'string' },
  control: { type: 'string' },
  ...COMMON_FLAGS,
} as const satisfies OptionSpecs;

const RUN_FLAGS = {
  ...CONTROL_FLAGS,
  workers: { type: 'string', short: 'w' },
  'ready-timeout': { type: 'string' },
  grace: { type: 'string' },
  stability: { type: 'string' },
  'max-restarts': { type: 'string' },
  'node-arg': { type: 'string', multiple: true },
  'max-memory': { type: 'string' },
  'memory-check': { type: 'string' },
} as const satisfies OptionSpecs;

export const runHelp = `Usage: nodescale run <app.js> [options] [-- app args]

Keep N workers of an app alive on one port (node:cluster), restart them when they crash, reload them without
dropping a request, and stop them gracefully. A worker is ready when the runtime layer says so (protect()), or when
the app calls process.send('ready').

Options:
  -w, --workers N|auto     how many workers; auto = usable CPUs, honouring the cgroup CPU quota (default auto)
      --ready-timeout DUR  a worker not ready by then is killed and counts as a crash (default 30s)
      --grace DUR          how long a stopping worker may drain before SIGKILL (default 30s)
      --stability DUR      reload: how long a new worker must stay up after ready before an old one stops (default 2s)
      --max-restarts N     crashes within 60 s before a worker is given up on (default ${RESTART_DEFAULTS.maxRestarts})
      --node-arg=ARG       a Node flag for the workers (repeatable): --node-arg=--max-old-space-size=512
      --max-memory SIZE    replace a worker whose RSS stays above SIZE (3 checks in a row), new one ready first
      --memory-check DUR   how often RSS is checked (default 5s)
      --name NAME          names the control socket (default: the app's file name)
      --control PATH       the control socket's path instead
  -h, --help               this help

Signals: SIGHUP reloads; SIGTERM or SIGINT stops gracefully.
Control: nodescale status | reload | scale N | stop [--name NAME | --control PATH]

Example:
  nodescale run server.js -w auto --node-arg=--abort-on-uncaught-exception -- --port 3000`;

function controlPath(values: Values, fallbackName: string | null): string {
  const explicit = textFlag(values, 'control');
  if (explicit !== undefined) return explicit;
  const name = textFlag(values, 'name') ?? fallbackName;
  if (name === null) throw new NodescaleError('NS_ERR_USAGE', 'give --name NAME (the app name given to nodescale run) or --control PATH');
  if (!/^[\w.-]+$/.test(name)) throw invalidOption('--name', 'letters, digits, ".", "_" or "-"', name);
  return defaultControlPath(name);
}

export function parseRunArgs(argv: string[]) {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const appArgs = dash === -1 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseCommandLine('run', own, RUN_FLAGS, 1);
  if (boolFlag(values, 'help')) return null;
  const app = path.resolve(requirePositional('run', positionals, 'the app file'));
  if (!existsSync(app)) throw new NodescaleError('NS_ERR_APP_NOT_FOUND', `no app file at ${app}`);
  const rawWorkers = textFlag(values, 'workers') ?? 'auto';
  const workers = rawWorkers === 'auto' ? usableCpus() : intFlag(values, 'workers')!;
  if (!(workers >= 1)) throw invalidOption('--workers', 'a whole number ≥ 1 or auto', rawWorkers);
  const maxRestarts = intFlag(values, 'max-restarts') ?? RESTART_DEFAULTS.maxRestarts;
  return {
    app,
    appArgs,
    workers,
    execArgv: listFlag(values, 'node-arg'),
    readyTimeoutMs: durationFlag(values, 'ready-timeout') ?? 30_000,
    graceMs: durationFlag(values, 'grace') ?? 30_000,
    stabilityMs: durationFlag(values, 'stability') ?? 2000,
    maxRestarts,
    maxMemoryBytes: sizeFlag(values, 'max-memory') ?? 0,
    memoryCheckMs: durationFlag(values, 'memory-check') ?? 5000,
    control: controlPath(values, path.basename(app).replace(/\.[^.]+$/, '')),
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseRunArgs(argv);
  if (args === null) {
    io.stdout.write(`${runHelp}\n`);
    return 0;
  }
  const log = (message: string, fields?: Record<string, unknown>) =>
    io.stderr.write(`nodescale run: ${message}${fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''}\n`);
  const supervisor = new Supervisor({
    app: args.app,
    args: args.appArgs,
    execArgv: args.execArgv,
    workers: args.workers,
    readyTimeoutMs: args.readyTimeoutMs,
    stabilityMs: args.stabilityMs,
    graceMs: args.graceMs,
    restart: { ...RESTART_DEFAULTS, maxRestarts: args.maxRestarts },
    maxMemoryBytes: args.maxMemoryBytes,
    memoryCheckMs: args.memoryCheckMs,
    output: (line, stream) => (stream === 'stdout' ? io.stdout : io.stderr).write(`${line}\n`),
    log,
  });
  // Every way of stopping (a signal, `nodescale stop`, every worker given up) settles `done`, which run() returns.
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  let stopping: Promise<number> | null = null;
  const stop = (code: number) => {
    stopping ??= supervisor.stop().then(({ killed }) => {
      if (killed > 0) log(`${killed} worker(s) did not drain within the grace period and were killed`);
      control.close();
      log('stopped');
      finish(code);
      return code;
    });
    return stopping;
  };
  // The control socket first: one already in use fails before any worker starts (no orphans).
  const control = await startControl(args.control, supervisor, () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  io.signal.addEventListener('abort', () => void stop(0), { once: true });
  process.on('SIGHUP', () => void supervisor.reload());
  supervisor.once('all-failed', () => void stop(1));
  try {
    await supervisor.start();
  } catch (error) {
    await stop(1);
    throw new NodescaleError('NS_ERR_APP_CRASH_LOOP', (error as Error).message);
  }
  log(`${args.workers} worker(s) ready; control socket ${control.path}`, { pid: process.pid });
  return done;
}

export const runCommand: Command = { name: 'run', help: runHelp, run };

// Control commands.

async function control(command: 'status' | 'reload' | 'stop' | 'scale', argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine(command, argv, CONTROL_FLAGS, command === 'scale' ? 1 : 0);
  if (boolFlag(values, 'help')) {
    io.stdout.write(`Usage: nodescale ${command} [--name NAME | --control PATH] [--json]\n`);
    return 0;
  }
  let args: Record<string, unknown> = {};
  if (command === 'scale') {
    const raw = requirePositional('scale', positionals, 'the number of workers');
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw invalidOption('workers', 'a whole number ≥ 1', raw);
    args = { workers: Number(raw) };
  }
  const socket = controlPath(values, null);
  let client: AdminClient;
  try {
    client = await AdminClient.connect(socket);
  } catch (error) {
    throw new NodescaleError('NS_ERR_SUPERVISOR_UNREACHABLE', `no supervisor at ${socket}: ${(error as Error).message}`);
  }
  try {
    const result = await client.request(command, args);
    const json = boolFlag(values, 'json');
    if (command === 'status') {
      const { workers, failed } = result as { workers: WorkerStatus[]; failed: { slot: number; reason: string }[] };
      if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        const rows = [['worker', 'pid', 'gen', 'state', 'uptime', 'restarts', 'rss', 'loop p99', 'req/s']];
        for (const w of workers) {
          rows.push([String(w.slot), String(w.pid), String(w.generation), w.state, `${w.uptimeSeconds}s`, String(w.restarts), w.rssBytes === null ? '—' : formatBytes(w.rssBytes), w.eventLoopDelayP99Ms === null ? '—' : formatMs(w.eventLoopDelayP99Ms), w.requestsPerSecond === null ? '—' : w.requestsPerSecond.toFixed(0)]);
        }
        io.stdout.write(`${renderColumns(rows)}\n${failed.map((f) => `worker ${f.slot} given up: ${f.reason}\n`).join('')}`);
      }
      return 0;
    }
    if (command === 'reload') {
      const outcome = result as ReloadOutcome;
      if (json) io.stdout.write(`${JSON.stringify(outcome)}\n`);
      if (!outcome.ok) throw new NodescaleError('NS_ERR_RELOAD_ROLLED_BACK', `reload rolled back after ${outcome.replaced} worker(s): ${outcome.reason}`);
      if (!json) io.stdout.write(`reloaded: ${outcome.replaced} worker(s) replaced\n`);
      return 0;
    }
    if (command === 'scale') io.stdout.write(json ? `${JSON.stringify(result)}\n` : `${(result as { workers: number }).workers} worker(s)\n`);
    else io.stdout.write(json ? `${JSON.stringify(result)}\n` : 'stopping\n');
    return 0;
  } finally {
    client.close();
  }
}

export const statusCommand: Command = { name: 'status', help: 'Usage: nodescale status [--name NAME | --control PATH] [--json]', run: (argv, io) => control('status', argv, io) };
export const reloadCommand: Command = { name: 'reload', help: 'Usage: nodescale reload [--name NAME | --control PATH] [--json]', run: (argv, io) => control('reload', argv, io) };
export const stopCommand: Command = { name: 'stop', help: 'Usage: nodescale stop [--name NAME | --control PATH]', run: (argv, io) => control('stop', argv, io) };
export const scaleCommand: Command = { name: 'scale', help: 'Usage: nodescale scale N [--name NAME | --control PATH] [--json]', run: (argv, io) => control('scale', argv, io) };
