/**
 * The supervisor's options: what each means, its default, and the one place both live. `nodescale run` (the CLI) and
 * its help read them from here, as runtime/options.ts does for the runtime: Options (all optional but the app) →
 * frozen DEFAULTS → resolveSupervisorOptions() → ResolvedSupervisorOptions.
 */
import { invalidOption } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import { usableCpus } from './cpus.ts';
import { RESTART_DEFAULTS, type RestartPolicyOptions } from './restart-policy.ts';

export type ReadyOn = 'auto' | 'message' | 'listening';
export const READY_ON: readonly ReadyOn[] = ['auto', 'message', 'listening'];

export type OutputLine = (line: string, from: { slot: number; pid: number; stream: 'stdout' | 'stderr' }) => void;

export interface SupervisorOptions {
  /** The app's entry file. */
  app: string;
  /** Arguments for the app. */
  args?: string[];
  /** Node flags for the workers. */
  execArgv?: string[];
  /** Preload drain-preload.ts into the workers, so that plain node:http apps drain on SIGTERM. */
  httpDrain?: boolean;
  /**
   * Linux perf: the workers run with --perf-basic-prof and --interpreted-frames-native-stack (V8 writes
   * /tmp/perf-<pid>.map, which `perf report` reads to name JavaScript functions); the map files are removed when the
   * supervisor stops, and beyond the 64 newest of workers that exited. Default false.
   */
  perf?: boolean;
  /** How many workers: a number, or 'auto' (the usable CPUs, honouring a cgroup quota: cpus.ts). */
  workers?: number | 'auto';
  /** A worker not ready by then is killed and counts as a crash. */
  readyTimeoutMs?: number;
  /**
   * When a worker is ready. 'auto': a worker that runs nodescale/runtime is ready when the runtime says so; any other
   * once it listens, or when it calls process.send('ready') first. 'message': only when it says so (the runtime, or
   * process.send('ready')). 'listening': once it listens.
   */
  readyOn?: ReadyOn;
  /** How long a new worker must stay up after it is ready before an old one is stopped (reload). */
  stabilityMs?: number;
  /** After a reload, how long each new worker must live after it was ready for the reload to succeed. */
  probationMs?: number;
  /**
   * What a reload does with the previous generation during probation. 'parked' (the default): keeps it alive, not
   * accepting, and brings it back if the new one fails (NS_ERR_RELOAD_ROLLED_BACK); stops it once probation passes.
   * It costs one generation's memory for the probation. 'none': stops each old worker once its replacement is
   * stable. Parking needs the drain preload (httpDrain); without it, 'none'.
   */
  rollback?: 'parked' | 'none';
  /** How long a stopping worker may drain before SIGKILL. */
  graceMs?: number;
  /** When to restart a crashed worker, and when to give up (restart-policy.ts). */
  restart?: Partial<RestartPolicyOptions>;
  /** Replace a worker whose RSS stays above this (3 checks in a row), by rolling replacement. 0: off. */
  maxMemoryBytes?: number;
  /** How often RSS is checked, ms. */
  memoryCheckMs?: number;
  /** How long a scrape of the supervisor's /metrics waits for a worker before leaving it out. */
  metricsTimeoutMs?: number;
  /**
   * Each worker gets a private admin socket (the runtime's console) named `<prefix>-w<slot>.<n>.sock`; null: none.
   * Workers not using nodescale/runtime have no console.
   */
  consoleSocketPrefix?: string | null;
  /** Where worker output goes, one line at a time (a line longer than 16 KiB is cut). Default: this process's. */
  output?: OutputLine;
  /** The supervisor's own log lines. Default: stderr. */
  log?: Logger;
}

export type ResolvedSupervisorOptions = Required<Omit<SupervisorOptions, 'workers' | 'restart'>> & {
  workers: number;
  restart: RestartPolicyOptions;
};

function rollbackOption(value: unknown): 'parked' | 'none' {
  if (value !== 'parked' && value !== 'none') throw invalidOption('rollback', 'parked or none', value);
  return value;
}

export const SUPERVISOR_DEFAULTS = Object.freeze({
  args: Object.freeze([] as string[]),
  execArgv: Object.freeze([] as string[]),
  httpDrain: true,
  perf: false,
  workers: 'auto' as const,
  readyTimeoutMs: 30_000,
  readyOn: 'auto',
  stabilityMs: 2000,
  probationMs: 30_000,
  rollback: 'parked',
  graceMs: 30_000,
  restart: RESTART_DEFAULTS,
  maxMemoryBytes: 0,
  memoryCheckMs: 5000,
  metricsTimeoutMs: 1000,
  consoleSocketPrefix: null,
});

const KNOWN = [...Object.keys(SUPERVISOR_DEFAULTS), 'app', 'output', 'log'];

const writeOutput: OutputLine = (line, from) =>
  (from.stream === 'stdout' ? process.stdout : process.stderr).write(`[w${from.slot} ${from.pid}] ${line}\n`);
const writeLog: Logger = (_level, message, fields) =>
  process.stderr.write(`nodescale run: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);

function duration(name: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min) throw invalidOption(name, `a duration of at least ${min} ms`, value);
  return value;
}

export function resolveSupervisorOptions(options: SupervisorOptions): ResolvedSupervisorOptions {
  refuseUnknownOptions(options, KNOWN);
  const defaults = SUPERVISOR_DEFAULTS;
  if (typeof options.app !== 'string' || options.app === '')
    throw invalidOption('app', 'the path of the app file', options.app);
  const workers = options.workers ?? defaults.workers;
  const count = workers === 'auto' ? usableCpus() : workers;
  if (!Number.isInteger(count) || count < 1) throw invalidOption('workers', 'a whole number ≥ 1 or auto', workers);
  const readyOn = options.readyOn ?? defaults.readyOn;
  if (!READY_ON.includes(readyOn)) throw invalidOption('readyOn', READY_ON.join(', ') + ' (or omitted)', readyOn);
  // The nested section is checked as the top is: a typo in it (`restart: { maxRestart: 3 }`) is no default in silence.
  if (options.restart !== undefined) refuseUnknownOptions(options.restart, Object.keys(RESTART_DEFAULTS), 'restart.');
  const restart = { ...defaults.restart, ...options.restart };
  if (!Number.isInteger(restart.maxRestarts) || restart.maxRestarts < 0)
    throw invalidOption('restart.maxRestarts', 'a whole number ≥ 0', restart.maxRestarts);
  for (const name of ['initialMs', 'maxMs', 'stableMs'] as const) duration(`restart.${name}`, restart[name]);
  if (restart.maxMs < restart.initialMs)
    throw invalidOption(
      'restart.maxMs',
      `a duration of at least restart.initialMs (${restart.initialMs} ms)`,
      restart.maxMs,
    );
  const maxMemoryBytes = options.maxMemoryBytes ?? defaults.maxMemoryBytes;
  if (!Number.isFinite(maxMemoryBytes) || maxMemoryBytes < 0)
    throw invalidOption('maxMemoryBytes', 'a number of bytes ≥ 0 (0: off)', maxMemoryBytes);
  return {
    app: options.app,
    args: [...(options.args ?? defaults.args)],
    execArgv: [...(options.execArgv ?? defaults.execArgv)],
    httpDrain: options.httpDrain ?? defaults.httpDrain,
    perf: options.perf ?? defaults.perf,
    workers: count,
    readyTimeoutMs: duration('readyTimeoutMs', options.readyTimeoutMs ?? defaults.readyTimeoutMs),
    readyOn,
    stabilityMs: duration('stabilityMs', options.stabilityMs ?? defaults.stabilityMs, 0),
    probationMs: duration('probationMs', options.probationMs ?? defaults.probationMs, 0),
    rollback: rollbackOption(options.rollback ?? defaults.rollback),
    graceMs: duration('graceMs', options.graceMs ?? defaults.graceMs, 0),
    restart,
    maxMemoryBytes,
    memoryCheckMs: duration('memoryCheckMs', options.memoryCheckMs ?? defaults.memoryCheckMs),
    metricsTimeoutMs: duration('metricsTimeoutMs', options.metricsTimeoutMs ?? defaults.metricsTimeoutMs),
    consoleSocketPrefix: options.consoleSocketPrefix ?? defaults.consoleSocketPrefix,
    output: options.output ?? writeOutput,
    log: options.log ?? writeLog,
  };
}
