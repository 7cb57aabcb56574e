/**
 * `nodescale run <app>` (the supervisor) and `nodescale status | reload | stop` (its control commands).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { invalidOption, NodescaleError } from '../errors.ts';
import { writeAnnouncement } from '../ipc.ts';
import type { Logger } from '../logger.ts';
import { connectSupervisor, defaultControlPath, startControl, type StopOutcome } from '../supervisor/control.ts';
import { startMetricsServer } from '../supervisor/metrics.ts';
import { Collector } from '../dashboard/collector.ts';
import { controlActions } from '../dashboard/actions.ts';
import { startDashboard, type Dashboard } from '../dashboard/server.ts';
import { READY_ON, SUPERVISOR_DEFAULTS, type ReadyOn, type SupervisorOptions } from '../supervisor/options.ts';
import { notifyReady, startWatchdog } from '../supervisor/systemd.ts';
import { LOG_FILE_DEFAULTS, LogFile } from '../supervisor/log-file.ts';
import { startWatch } from '../supervisor/watch.ts';
import { Supervisor, type ReloadOutcome, type ReloadStatus, type WorkerStatus } from '../supervisor/supervisor.ts';
import { formatBytes, formatDuration, formatMs } from '../units.ts';
import {
  defined,
  boolFlag,
  COMMON_FLAGS,
  durationFlag,
  hostPortFlag,
  tokenFileFlag,
  intFlag,
  listFlag,
  parseCommandLine,
  requirePositional,
  sizeFlag,
  textFlag,
  type OptionSpecs,
  type Values,
} from './args.ts';
import type { Command, Io } from './io.ts';
import { renderColumns } from '../views/columns.ts';

const CONTROL_FLAGS = {
  name: { type: 'string' },
  control: { type: 'string' },
  'no-wait': { type: 'boolean' },
  ...COMMON_FLAGS,
} as const satisfies OptionSpecs;

export const RUN_FLAGS = {
  ...CONTROL_FLAGS,
  workers: { type: 'string', short: 'w' },
  'ready-timeout': { type: 'string' },
  grace: { type: 'string' },
  stability: { type: 'string' },
  probation: { type: 'string' },
  rollback: { type: 'string' },
  'ready-on': { type: 'string' },
  'max-restarts': { type: 'string' },
  'node-arg': { type: 'string', multiple: true },
  perf: { type: 'boolean' },
  'no-http-drain': { type: 'boolean' },
  'max-memory': { type: 'string' },
  'memory-check': { type: 'string' },
  metrics: { type: 'string' },
  'metrics-timeout': { type: 'string' },
  dashboard: { type: 'string' },
  'dashboard-token-file': { type: 'string' },
  'dashboard-admin-token-file': { type: 'string' },
  console: { type: 'boolean' },
  'log-format': { type: 'string' },
  'log-file': { type: 'string' },
  'log-max-size': { type: 'string' },
  'log-keep': { type: 'string' },
  watch: { type: 'boolean' },
  'watch-path': { type: 'string', multiple: true },
  'watch-ignore': { type: 'string', multiple: true },
} as const satisfies OptionSpecs;

const defaults = SUPERVISOR_DEFAULTS;
const sd = formatDuration;

export const runHelp = `Usage: nodescale run <app.js> [options] [-- app args]

Keep N workers of an app alive on one port (node:cluster), restart them when they crash, reload them without
dropping a request, and stop them gracefully. A worker that runs nodescale/runtime (protect()) is ready when the
runtime says so; any other app once it listens (or when it calls process.send('ready')).

Options:
  -w, --workers N|auto     how many workers; auto = usable CPUs, honouring the cgroup CPU quota (default auto)
      --ready-on WHEN      auto (the default): as above, and the log says which rule applied; message: only when the
                           worker says so (nodescale/runtime or process.send('ready')); listening: once it listens
      --ready-timeout DUR  a worker not ready by then is killed and counts as a crash (default ${sd(defaults.readyTimeoutMs)})
      --grace DUR          how long a stopping worker may drain before SIGKILL (default ${sd(defaults.graceMs)})
      --stability DUR      reload: how long a new worker must stay up after ready before an old one stops (default ${sd(defaults.stabilityMs)})
      --probation DUR      reload: how long each new worker must then live for the reload to succeed (default ${sd(defaults.probationMs)})
      --rollback WHAT      reload: parked (the default) keeps the previous generation alive and accepting nothing
                           during probation, and brings it back if the new one fails; none stops it at once
      --max-restarts N     crashes in a row (none after ${sd(defaults.restart.stableMs)} up) before a worker is given up on
                           (default ${defaults.restart.maxRestarts})
      --node-arg=ARG       a Node flag for the workers (repeatable): --node-arg=--max-old-space-size=512
      --perf               the workers ready for Linux perf (--perf-basic-prof): perf record -p PID, then perf
                           report names JavaScript functions; their /tmp/perf-PID.map removed at stop
      --no-http-drain      do not preload the drain that makes plain node:http apps finish their requests on SIGTERM
                           (Connection: close, idle keep-alive sockets closed between requests)
      --max-memory SIZE    replace a worker whose RSS stays above SIZE (3 checks in a row), new one ready first
      --memory-check DUR   how often RSS is checked (default ${sd(defaults.memoryCheckMs)})
      --metrics [HOST:]PORT  every worker's metrics on one Prometheus endpoint, labelled by worker (host: 127.0.0.1)
      --metrics-timeout DUR  how long a scrape waits for a worker before leaving it out (default ${sd(defaults.metricsTimeoutMs)})
      --dashboard [HOST:]PORT  a live web page of the workers: table, charts, events (host: 127.0.0.1; any
                           other address needs --dashboard-token-file)
      --dashboard-token-file F  the dashboard's token (at least 16 characters): every request then needs it
      --dashboard-admin-token-file F  the page's buttons (reload, scale, heap snapshot) with this other token,
                           each action audited in the log; without it the dashboard has no action
      --console            give each worker running nodescale/runtime a private admin console:
                           nodescale console --name NAME --worker N
      --log-format F       text (lines prefixed [w<slot> <pid>], the default) or json (one object a line)
      --log-file FILE      the workers' output and the supervisor's own lines to FILE instead, one JSON object a
                           line (nodescale logs reads it), rotated by the supervisor: nothing lost, nothing unbounded
      --log-max-size SIZE  rotate the log file at SIZE (default ${formatBytes(LOG_FILE_DEFAULTS.maxBytes)})
      --log-keep N         rotated files kept: FILE.1 … FILE.N (default ${LOG_FILE_DEFAULTS.keep})
      --watch              development: a change in the app's directory reloads it (health-gated: a version that
                           does not start leaves the old one serving); node_modules, .git and the log ignored
      --watch-path P       watch P instead (repeatable; implies --watch)
      --watch-ignore GLOB  changes that do not count (repeatable): '*.test.ts', 'dist/**'
      --name NAME          names the control socket (default: the app's file name)
      --control PATH       the control socket's path instead
  -h, --help               this help

Signals: SIGHUP reloads; SIGTERM or SIGINT stops gracefully.
Control: nodescale status | reload | scale N | stop [--name NAME | --control PATH]
         nodescale console --name NAME --worker N [command]

Example:
  nodescale run server.js -w auto --node-arg=--abort-on-uncaught-exception -- --port 3000
  nodescale run server.js -w 2 --metrics 9100 --console --log-format json`;

/** The control socket named by --control, or --name (or the app's name); shared with `nodescale console --worker`. */
export function controlPath(values: Values, fallbackName: string | null): string {
  const explicit = textFlag(values, 'control');
  if (explicit !== undefined) return explicit;
  const name = textFlag(values, 'name') ?? fallbackName;
  if (name === null)
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'give --name NAME (the app name given to nodescale run) or --control PATH',
    );
  if (!/^[\w.-]+$/.test(name)) throw invalidOption('--name', 'letters, digits, ".", "_" or "-"', name);
  return defaultControlPath(name);
}

/**
 * The control socket to talk to: --control, --name, or without either the one supervisor this user runs. None, or
 * several (the error lists their names), is an error. A socket left by a supervisor that died does not count.
 */
export async function findControl(values: Values): Promise<string> {
  if (textFlag(values, 'control') !== undefined || textFlag(values, 'name') !== undefined)
    return controlPath(values, null);
  const dir = path.dirname(defaultControlPath('x'));
  let files: string[] = [];
  try {
    // run-<name>.sock; the workers' consoles (run-<name>-w<slot>.<n>.sock) are not supervisors.
    files = readdirSync(dir).filter((file) => /^run-[\w.-]+\.sock$/.test(file) && !/-w\d+\.\d+\.sock$/.test(file));
  } catch {
    // no directory: nobody runs
  }
  const live = await Promise.all(files.map((file) => socketAnswers(path.join(dir, file))));
  const names = files.filter((_, i) => live[i]).map((file) => file.slice('run-'.length, -'.sock'.length));
  if (names.length === 1) return defaultControlPath(names[0]!);
  if (names.length === 0)
    throw new NodescaleError(
      'NS_ERR_SUPERVISOR_UNREACHABLE',
      'no supervisor of this user runs (start one with nodescale run), or give --name NAME or --control PATH',
    );
  throw new NodescaleError(
    'NS_ERR_USAGE',
    `${names.length} supervisors run (${names.sort().join(', ')}): say which with --name NAME`,
  );
}

/** Resolves once the process is gone (or after 10 s: then it is someone else's, a reused pid, or a zombie). */
export async function untilGone(pid: number): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > end) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether a process listens on the Unix socket (a stale socket file refuses the connection). */
function socketAnswers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(file);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function readyOn(raw: string): ReadyOn {
  if (!(READY_ON as string[]).includes(raw)) throw invalidOption('--ready-on', READY_ON.join(', '), raw);
  return raw as ReadyOn;
}

function rollbackFlag(raw: string | undefined): 'parked' | 'none' | undefined {
  if (raw !== undefined && raw !== 'parked' && raw !== 'none') throw invalidOption('--rollback', 'parked or none', raw);
  return raw;
}

function logFormat(raw: string): 'text' | 'json' {
  if (raw !== 'text' && raw !== 'json') throw invalidOption('--log-format', 'text or json', raw);
  return raw;
}

export function parseRunArgs(argv: string[]) {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const appArgs = dash === -1 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseCommandLine('run', own, RUN_FLAGS, 1);
  const app = path.resolve(requirePositional('run', positionals, 'the app file'));
  if (!existsSync(app)) throw new NodescaleError('NS_ERR_APP_NOT_FOUND', `no app file at ${app}`);
  if (!statSync(app).isFile())
    throw new NodescaleError(
      'NS_ERR_APP_NOT_FOUND',
      `${app} is not a file: give the app's entry file (server.js, not its directory)`,
    );
  const rawWorkers = textFlag(values, 'workers');
  const workers = rawWorkers === 'auto' ? 'auto' : intFlag(values, 'workers');
  if (workers !== undefined && workers !== 'auto' && !(workers >= 1))
    throw invalidOption('--workers', 'a whole number ≥ 1 or auto', rawWorkers);
  const rawReadyOn = textFlag(values, 'ready-on');
  const maxRestarts = intFlag(values, 'max-restarts');
  // Flags map to the supervisor's options; a flag not given is left out, and the library fills in its default.
  const supervisor: SupervisorOptions = {
    app,
    args: appArgs,
    execArgv: listFlag(values, 'node-arg'),
    httpDrain: !boolFlag(values, 'no-http-drain'),
    perf: boolFlag(values, 'perf'),
    ...defined({
      workers,
      readyTimeoutMs: durationFlag(values, 'ready-timeout'),
      graceMs: durationFlag(values, 'grace'),
      stabilityMs: durationFlag(values, 'stability'),
      probationMs: durationFlag(values, 'probation'),
      rollback: rollbackFlag(textFlag(values, 'rollback')),
      readyOn: rawReadyOn === undefined ? undefined : readyOn(rawReadyOn),
      restart: maxRestarts === undefined ? undefined : { maxRestarts },
      maxMemoryBytes: sizeFlag(values, 'max-memory'),
      memoryCheckMs: durationFlag(values, 'memory-check'),
      metricsTimeoutMs: durationFlag(values, 'metrics-timeout'),
    }),
  };
  const watchPaths = listFlag(values, 'watch-path');
  for (const watched of watchPaths)
    if (!existsSync(watched)) throw invalidOption('--watch-path', 'a file or directory that exists', watched);
  const watching = boolFlag(values, 'watch') || watchPaths.length > 0;
  // Watch mode reloads often: a short probation unless one is given (a reload waits for the one before it).
  if (watching) {
    supervisor.stabilityMs ??= 200;
    supervisor.probationMs ??= 1000;
  }
  return {
    supervisor,
    watch: watching
      ? { paths: watchPaths.length > 0 ? watchPaths : [path.dirname(app)], ignore: listFlag(values, 'watch-ignore') }
      : null,
    metrics: hostPortFlag(values, 'metrics'),
    dashboard: dashboardFlags(values),
    console: boolFlag(values, 'console'),
    logFormat: logFormat(textFlag(values, 'log-format') ?? 'text'),
    logFile: logFileFlags(values),
    control: controlPath(values, path.basename(app).replace(/\.[^.]+$/, '')),
    name: textFlag(values, 'name') ?? path.basename(app).replace(/\.[^.]+$/, ''),
  };
}

function dashboardFlags(
  values: Values,
): { host: string; port: number; token: string | null; adminToken: string | null } | null {
  const at = hostPortFlag(values, 'dashboard');
  const token = tokenFileFlag(values, 'dashboard-token-file');
  const adminToken = tokenFileFlag(values, 'dashboard-admin-token-file');
  if (at === null) {
    if (token !== undefined || adminToken !== undefined)
      throw new NodescaleError(
        'NS_ERR_USAGE',
        '--dashboard-token-file and --dashboard-admin-token-file go with --dashboard',
      );
    return null;
  }
  return { ...at, token: token ?? null, adminToken: adminToken ?? null };
}

function logFileFlags(values: Values): { file: string; maxBytes: number; keep: number } | null {
  const file = textFlag(values, 'log-file');
  const maxBytes = sizeFlag(values, 'log-max-size');
  const keep = intFlag(values, 'log-keep');
  if (file === undefined) {
    if (maxBytes !== undefined || keep !== undefined)
      throw new NodescaleError('NS_ERR_USAGE', '--log-max-size and --log-keep are for --log-file');
    return null;
  }
  if (maxBytes !== undefined && !(maxBytes >= 4096)) throw invalidOption('--log-max-size', 'at least 4KiB', maxBytes);
  if (keep !== undefined && !(keep >= 0 && keep <= 100))
    throw invalidOption('--log-keep', 'a whole number from 0 to 100', keep);
  return {
    file: path.resolve(file),
    maxBytes: maxBytes ?? LOG_FILE_DEFAULTS.maxBytes,
    keep: keep ?? LOG_FILE_DEFAULTS.keep,
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseRunArgs(argv);
  const json = args.logFormat === 'json';
  const logFile = args.logFile === null ? null : new LogFile(args.logFile.file, args.logFile);
  const supervisorRecord = (level: string, message: string, fields?: Record<string, unknown>) => ({
    time: new Date().toISOString(),
    level,
    source: 'supervisor',
    message,
    ...fields,
  });
  const log: Logger = (level, message, fields) =>
    logFile !== null
      ? logFile.write(supervisorRecord(level, message, fields))
      : void io.stderr.write(
          json
            ? `${JSON.stringify(supervisorRecord(level, message, fields))}\n`
            : `nodescale run: ${message}${fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : ''}\n`,
        );
  const joined = stackJoiner((record, stream) =>
    logFile !== null
      ? logFile.write(record)
      : (stream === 'stdout' ? io.stdout : io.stderr).write(`${JSON.stringify(record)}\n`),
  );
  const output = (line: string, from: { slot: number; pid: number; stream: 'stdout' | 'stderr' }) =>
    json || logFile !== null
      ? joined(line, from)
      : (from.stream === 'stdout' ? io.stdout : io.stderr).write(`[w${from.slot} ${from.pid}] ${line}\n`);
  const supervisor = new Supervisor({
    ...args.supervisor,
    consoleSocketPrefix: args.console ? args.control.replace(/\.sock$/, '') : null,
    output,
    log,
  });
  // Every way of stopping (a signal, `nodescale stop`, every worker given up) settles `done`, which run() returns.
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  // The last records: the stack joiner writes a record 50 ms after its last line.
  if (logFile !== null)
    void done.then(() => new Promise((resolve) => setTimeout(resolve, 60)).then(() => logFile.close()));
  let stopping: Promise<StopOutcome> | null = null;
  const stop = (code: number) => {
    stopping ??= supervisor.stop().then(({ killed }) => {
      if (killed > 0) log('warn', `${killed} worker(s) did not drain within the grace period and were killed`);
      control.close();
      metricsServer?.close();
      void dashboard?.close();
      collector?.close();
      log('info', 'stopped');
      finish(code);
      return { code: killed > 0 ? 1 : code, killed };
    });
    return stopping;
  };
  // The control socket first: one already in use fails before any worker starts (no orphans).
  const control = await startControl(args.control, supervisor, () => stop(0)).catch((error: unknown) => {
    if ((error as NodescaleError).code !== 'NS_ERR_ADMIN_IN_USE') throw error;
    // Two apps called server.js in two projects share the default name: say how to tell them apart.
    throw new NodescaleError(
      'NS_ERR_ADMIN_IN_USE',
      `another nodescale run already uses the name "${path.basename(args.control, '.sock').replace(/^run-/, '')}" (its control socket ${args.control}): give this one --name NAME`,
    );
  });
  let metricsServer: Server | null = null;
  if (args.metrics !== null) {
    try {
      metricsServer = await startMetricsServer(args.metrics, supervisor, supervisor.options.metricsTimeoutMs);
    } catch (error) {
      control.close();
      throw error;
    }
  }
  // The dashboard before the workers start: it shows them starting.
  let collector: Collector | null = null;
  let dashboard: Dashboard | null = null;
  if (args.dashboard !== null) {
    collector = new Collector(args.name, supervisor);
    try {
      const { adminToken, ...at } = args.dashboard;
      dashboard = await startDashboard({
        ...at,
        apps: [collector],
        admin:
          adminToken === null
            ? null
            : {
                token: adminToken,
                // Through the control socket, as `nodescale reload` and `scale` go: one path, one set of checks.
                actions: new Map([[args.name, controlActions(control.path)]]),
                audit: (entry) => log('info', 'dashboard action', entry),
              },
      });
    } catch (error) {
      collector.close();
      control.close();
      metricsServer?.close();
      throw error;
    }
    writeAnnouncement({ nodescale: 'listening', service: 'dashboard', url: dashboard.url, pid: process.pid });
  }
  const onTerm = () => void stop(0);
  const onHup = () => void supervisor.reload();
  process.once('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  io.signal.addEventListener('abort', onTerm, { once: true });
  void done.then(() => {
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
    io.signal.removeEventListener('abort', onTerm);
  });
  try {
    // 'stopped': a signal or `nodescale stop` came while the workers were starting; done settles with the stop.
    if ((await supervisor.start()) === 'stopped') return await done;
  } catch (error) {
    // A slot given up on while starting (start() rejects with NS_ERR_APP_CRASH_LOOP).
    await stop(1);
    throw error;
  }
  // Later, every slot given up on (crash loops after start, a scale up that cannot start) stops the supervisor.
  supervisor.once('all-failed', () => void stop(1));
  if (supervisor.failedSlots().length === supervisor.options.workers) void stop(1);
  const metricsUrl =
    args.metrics &&
    `http://${args.metrics.host.includes(':') ? `[${args.metrics.host}]` : args.metrics.host}:${(metricsServer!.address() as AddressInfo).port}/metrics`;
  if (metricsUrl) writeAnnouncement({ nodescale: 'listening', service: 'metrics', url: metricsUrl, pid: process.pid });
  if (args.watch !== null) {
    const cwd = process.cwd();
    const watcher = startWatch({
      ...args.watch,
      ignoreDirs: logFile === null ? [] : [path.dirname(logFile.file)],
      onChange: async (file) => {
        log('info', `watch: ${path.relative(cwd, file) || file} changed: reloading`);
        const outcome = await supervisor.reload();
        if (outcome.ok) log('info', `watch: reloaded, ${outcome.replaced} worker(s) on the new version`);
        else if (outcome.failure !== 'stopping')
          log('warn', `watch: the new version did not start; the old one keeps serving: ${outcome.reason}`);
      },
    });
    void done.then(() => watcher.close());
    log('info', `watch: ${args.watch.paths.join(', ')} (a change reloads)`);
  }
  // Under systemd (Type=notify): ready now, and the watchdog kept alive from this event loop.
  notifyReady(`${supervisor.options.workers} worker(s) ready`, log);
  const stopWatchdog = startWatchdog(log);
  void done.then(stopWatchdog);
  log(
    'info',
    `${supervisor.options.workers} worker(s) ready; control socket ${control.path}${metricsUrl ? `; metrics ${metricsUrl}` : ''}${dashboard ? `; dashboard ${dashboard.url}` : ''}`,
    {
      pid: process.pid,
    },
  );
  return done;
}

/**
 * --log-format json for worker output, one record per message: an indented line that follows another of the same
 * worker and stream within 50 ms (the `    at …` lines of a stack trace) is added to that record's message, so a crash
 * stack is one record, not ten. A record is written when the next one starts, or 50 ms after its last line.
 */
export function stackJoiner(
  write: (record: Record<string, unknown>, stream: 'stdout' | 'stderr') => void,
  waitMs = 50,
): (line: string, from: { slot: number; pid: number; stream: 'stdout' | 'stderr' }) => void {
  const open = new Map<
    string,
    { record: Record<string, unknown>; stream: 'stdout' | 'stderr'; timer: NodeJS.Timeout }
  >();
  const flush = (key: string) => {
    const entry = open.get(key);
    if (entry === undefined) return;
    open.delete(key);
    clearTimeout(entry.timer);
    write(entry.record, entry.stream);
  };
  return (line, from) => {
    const key = `${from.pid}:${from.stream}`;
    const entry = open.get(key);
    if (entry !== undefined && /^\s+\S/.test(line) && typeof entry.record.message === 'string') {
      entry.record.message = `${entry.record.message}\n${line}`;
      entry.timer.refresh();
      return;
    }
    flush(key);
    // Not unref'd: a supervisor that is exiting still writes its workers' last record.
    const timer = setTimeout(() => flush(key), waitMs);
    open.set(key, { record: jsonOutputLine(line, from), stream: from.stream, timer });
  };
}

/**
 * One worker output line for --log-format json. A line that is itself a JSON object (a JSON logger's, the runtime's)
 * is merged in rather than quoted inside `message`, so a log pipeline reads its fields; the worker's fields win.
 */
export function jsonOutputLine(
  line: string,
  from: { slot: number; pid: number; stream: 'stdout' | 'stderr' },
): Record<string, unknown> {
  const where = { worker: from.slot, pid: from.pid, stream: from.stream };
  if (line.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return { time: new Date().toISOString(), ...parsed, ...where };
    } catch {
      // not JSON after all: quoted below
    }
  }
  return { time: new Date().toISOString(), ...where, message: line };
}

export const runCommand: Command = { name: 'run', help: runHelp, run };

// Control commands.

type ControlCommand = 'status' | 'reload' | 'stop' | 'scale';

interface StatusResult {
  workers: WorkerStatus[];
  failed: { slot: number; reason: string }[];
  reload: ReloadStatus | null;
}

const dash = <T>(value: T | null, format: (v: T) => string) => (value === null ? '—' : format(value));

/** `nodescale status` as text: a row per worker, then the slots given up on and the last reload's verdict. */
export function statusView({ workers, failed, reload }: StatusResult): string {
  const rows = [['worker', 'pid', 'gen', 'state', 'uptime', 'restarts', 'rss', 'loop p99', 'req/s']];
  for (const w of workers) {
    rows.push([
      ...[String(w.slot), String(w.pid), String(w.generation), w.state, `${w.uptimeSeconds}s`, String(w.restarts)],
      ...[
        dash(w.rssBytes, formatBytes),
        dash(w.eventLoopDelayP99Ms, formatMs),
        dash(w.requestsPerSecond, (r) => r.toFixed(0)),
      ],
    ]);
  }
  const lines = failed.map((f) => `worker ${f.slot} given up: ${f.reason}`);
  if (reload !== null)
    lines.push(
      `last reload: generation ${reload.generation}, ${reload.state}${reload.reason === null ? '' : `: ${reload.reason}`}`,
    );
  return `${renderColumns(rows)}\n${lines.map((line) => `${line}\n`).join('')}`;
}

/** A reload's verdict as text, or the error its failure exits with (after --json has printed the outcome). */
export function reloadView(outcome: ReloadOutcome): string {
  if (!outcome.ok && outcome.failure === 'probation')
    throw new NodescaleError(
      'NS_ERR_RELOAD_UNSTABLE',
      `reload failed after replacing ${outcome.replaced} worker(s): ${outcome.reason}`,
    );
  if (!outcome.ok)
    throw new NodescaleError(
      'NS_ERR_RELOAD_ROLLED_BACK',
      `reload rolled back after ${outcome.replaced} worker(s): ${outcome.reason}`,
    );
  return `reloaded: ${outcome.replaced} worker(s) replaced, and each lived through its probation\n`;
}

/** What each control command prints, from the supervisor's answer. */
const CONTROL_VIEWS: Record<ControlCommand, (result: never) => string> = {
  status: statusView,
  reload: reloadView,
  scale: (result: { workers: number }) => `${result.workers} worker(s)\n`,
  stop: (result: { stopping?: boolean; stopped?: boolean; pid: number; killed?: number }) => {
    if (result.stopped !== true) return `stopping (pid ${result.pid})\n`;
    if ((result.killed ?? 0) > 0)
      throw new NodescaleError(
        'NS_ERR_STOP_FORCED',
        `stopped (pid ${result.pid}), but ${result.killed} worker(s) did not drain within the grace period and were killed`,
      );
    return `stopped (pid ${result.pid}): every worker drained\n`;
  },
};

/** A reload's progress, as it comes: each slot replaced, then the probation's length. */
function reloadProgressView(event: unknown): string {
  const e = event as { slot?: number; pid?: number; replaced?: number; of?: number; probationLeftMs?: number };
  if (e.probationLeftMs !== undefined)
    return `reload: every slot replaced; on probation for ${Math.ceil(e.probationLeftMs / 1000)} s (a new worker that exits then fails the reload)\n`;
  return `reload: worker ${e.slot} replaced (pid ${e.pid}), ${e.replaced} of ${e.of}\n`;
}

/**
 * Which supervisors a control command acts on: the NAME given (`nodescale stop api`, as pm2 users type it), or
 * --name/--control; without them, every app of the config file in this directory, in its order (not for scale); else
 * the one supervisor this user runs.
 */
async function controlTargets(command: ControlCommand, values: Values, name: string | undefined) {
  if (name !== undefined) {
    if (textFlag(values, 'name') !== undefined || textFlag(values, 'control') !== undefined)
      throw new NodescaleError('NS_ERR_USAGE', `give the app's name once: ${name}, or --name`);
    return [{ name, path: controlPath({ name }, null), fromConfig: false }];
  }
  if (textFlag(values, 'name') === undefined && textFlag(values, 'control') === undefined && command !== 'scale') {
    const { findConfig, loadConfig } = await import('../apps/config.ts');
    const file = findConfig(process.cwd());
    if (file !== null)
      return (await loadConfig(file)).apps.map((app) => ({
        name: app.name,
        path: defaultControlPath(app.name),
        fromConfig: true,
      }));
  }
  return [{ name: null, path: await findControl(values), fromConfig: false }];
}

/** Asks the supervisor(s), then prints: the answer as JSON with --json, else its view (which may throw its failure). */
async function control(command: ControlCommand, argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine(command, argv, CONTROL_FLAGS, command === 'scale' ? 2 : 1);
  let args: Record<string, unknown> = {};
  let name: string | undefined = positionals[0];
  if (command === 'scale') {
    // scale N, or scale NAME N
    const raw = requirePositional('scale', positionals.slice(positionals.length - 1), 'the number of workers');
    name = positionals.length === 2 ? positionals[0] : undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw invalidOption('workers', 'a whole number ≥ 1', raw);
    args = { workers: Number(raw) };
  }
  if (command === 'stop' && boolFlag(values, 'no-wait')) args = { wait: false };
  const targets = await controlTargets(command, values, name);
  const json = boolFlag(values, 'json');
  for (const target of targets) {
    let client;
    try {
      client = await connectSupervisor(target.path);
    } catch (error) {
      // Acting on a config file's apps: one that does not run is said, and the others go on.
      if (!target.fromConfig) throw error;
      io.stderr.write(`${target.name}: not running\n`);
      continue;
    }
    let result: unknown;
    try {
      const onEvent = command === 'reload' ? (event: unknown) => io.stderr.write(reloadProgressView(event)) : undefined;
      result = await client.request(command, args, onEvent ? { onEvent } : {});
    } finally {
      client.close();
    }
    // A stop that waited: the supervisor has answered and closed everything; its process is gone moments later.
    if (command === 'stop' && (result as { stopped?: boolean }).stopped === true)
      await untilGone((result as { pid: number }).pid);
    if (json)
      io.stdout.write(
        `${JSON.stringify(targets.length > 1 ? { name: target.name, ...(result as object) } : result)}\n`,
      );
    const text = CONTROL_VIEWS[command](result as never);
    if (!json) io.stdout.write(targets.length > 1 ? `${target.name}: ${text}` : text);
  }
  return 0;
}

/** A control command: `nodescale <name> [N] [--name NAME | --control PATH] [--json]`. */
function controlCommand(name: ControlCommand, usage: string): Command {
  return { name, help: `Usage: nodescale ${usage}`, run: (argv, io) => control(name, argv, io) };
}

const WHICH =
  'Which: NAME (or --name NAME, --control PATH); without one, every app of ./nodescale.config.json in order, else\nthe one supervisor this user runs (several: the error lists them).';
export const statusCommand = controlCommand(
  'status',
  `status [NAME] [--name NAME | --control PATH] [--json]\n\n${WHICH}`,
);
export const reloadCommand = controlCommand(
  'reload',
  `reload [NAME] [--name NAME | --control PATH] [--json]\n\nRolling reload; prints each slot replaced and the probation on stderr while it waits.\n${WHICH}`,
);
export const stopCommand = controlCommand(
  'stop',
  `stop [NAME] [--name NAME | --control PATH] [--no-wait] [--json]

Stops the supervisor gracefully and waits until it has exited: exit 0 when every worker drained, 1 with
NS_ERR_STOP_FORCED when some were killed at the end of --grace. --no-wait returns once the stop has begun.
${WHICH}`,
);
export const scaleCommand = controlCommand('scale', 'scale [NAME] N [--name NAME | --control PATH] [--json]');
