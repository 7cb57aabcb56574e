/**
 * `nodescale start <app | config>` and `nodescale restart NAME`: an app's supervisor (`nodescale run`) started in the
 * background, in a session of its own, its output to the app's rotated log file (src/apps/home.ts says where), and
 * the command returning once every worker is ready, or with the reason they are not. There is no daemon: each app's
 * supervisor is its own process, found again by its name.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appDir, appLogFile, checkAppName, readStartRecord, writeStartRecord } from '../apps/home.ts';
import { appCwd, appEnv, findConfig, isConfigFile, loadConfig, runArgsOf, type Config } from '../apps/config.ts';
import { lastRecords, type LogRecord } from '../apps/log-reader.ts';
import { NodescaleError } from '../errors.ts';
import { askSupervisor, defaultControlPath } from '../supervisor/control.ts';
import { formatDuration } from '../units.ts';
import { parseCommandLine, textFlag, COMMON_FLAGS, durationFlag } from './args.ts';
import type { Command, Io } from './io.ts';
import { parseRunArgs, untilGone } from './supervise.ts';

const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));
const DEFAULT_WAIT_MS = 120_000;

/** One app to start: run's arguments (with --name), where, and with what environment on top of this one's. */
export interface StartSpec {
  name: string;
  runArgs: string[];
  cwd: string;
  env: Record<string, string>;
  config: string | null;
}

interface StatusAnswer {
  pid: number;
  started: boolean;
  workers: { state: string }[];
}

/** Whether an app of that name runs (its supervisor answers): its pid, or null. */
export async function runningPid(name: string): Promise<number | null> {
  try {
    return ((await askSupervisor(defaultControlPath(name), 'status', {}, 1500)) as StatusAnswer).pid;
  } catch {
    return null;
  }
}

const recordText = (r: LogRecord) => (typeof r.message === 'string' ? r.message : JSON.stringify(r.message ?? r));

/** The last lines a failed start left: the log's, else what the supervisor process printed. */
function lastWords(name: string): string {
  const records = lastRecords(appLogFile(name), 6);
  if (records.length > 0) return records.map(recordText).join(' | ');
  try {
    return readFileSync(path.join(appDir(name), 'supervisor.out'), 'utf8')
      .trim()
      .split('\n')
      .slice(-6)
      .join(' | ');
  } catch {
    return '(it printed nothing)';
  }
}

/** Starts one app's supervisor in the background and waits until every worker is ready (or it gives up). */
export async function startApp(spec: StartSpec, waitMs: number, io: Io): Promise<{ pid: number; workers: number }> {
  const running = await runningPid(spec.name);
  if (running !== null)
    throw new NodescaleError(
      'NS_ERR_APP_RUNNING',
      `${spec.name} already runs (supervisor pid ${running}): nodescale reload --name ${spec.name} runs new code without dropping a request, nodescale restart ${spec.name} starts it again`,
    );
  const dir = appDir(spec.name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const logFile = appLogFile(spec.name);
  const out = openSync(path.join(dir, 'supervisor.out'), 'w', 0o600);
  const child = spawn(process.execPath, [BIN, 'run', ...spec.runArgs, '--log-file', logFile], {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env },
    // A session of its own: the terminal's Ctrl-C and hang-up do not reach it.
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = signal ?? String(code)));
  child.unref();
  writeStartRecord({
    name: spec.name,
    pid: child.pid!,
    runArgs: spec.runArgs,
    cwd: spec.cwd,
    startedAt: new Date().toISOString(),
    logFile,
    config: spec.config,
  });
  const deadline = Date.now() + waitMs;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (exited !== null)
      throw new NodescaleError(
        'NS_ERR_START_FAILED',
        `${spec.name}: its supervisor exited (${exited}) before every worker was ready: ${lastWords(spec.name)}`,
      );
    try {
      const status = (await askSupervisor(defaultControlPath(spec.name), 'status', {}, 1500)) as StatusAnswer;
      if (status.started) return { pid: status.pid, workers: status.workers.length };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      io.stderr.write(`start: ${spec.name} is still starting; it goes on (nodescale status --name ${spec.name})\n`);
      throw new NodescaleError(
        'NS_ERR_START_FAILED',
        `${spec.name}: not every worker was ready within ${formatDuration(waitMs)}: ${lastWords(spec.name)}`,
      );
    }
  }
}

/** The apps a config file names, as StartSpecs (--env picks the env_<name> blocks). */
export function configSpecs(config: Config, environment: string | undefined, only?: string): StartSpec[] {
  if (environment !== undefined && !config.apps.some((app) => environment in app.environments))
    throw new NodescaleError(
      'NS_ERR_CONFIG',
      `${path.basename(config.file)}: no app has env_${environment} (--env ${environment})`,
    );
  const apps = only === undefined ? config.apps : config.apps.filter((app) => app.name === only);
  if (apps.length === 0)
    throw new NodescaleError(
      'NS_ERR_APP_UNKNOWN',
      `${path.basename(config.file)} has no app ${only} (its apps: ${config.apps.map((a) => a.name).join(', ')})`,
    );
  return apps.map((app) => ({
    name: app.name,
    runArgs: runArgsOf(config, app),
    cwd: appCwd(config, app),
    env: appEnv(app, environment),
    config: config.file,
  }));
}

const START_FLAGS = {
  env: { type: 'string' },
  only: { type: 'string' },
  wait: { type: 'string' },
  ...COMMON_FLAGS,
} as const;

export const startHelp = `Usage: nodescale start <app.js> [run's options] [-- app args]
       nodescale start [nodescale.config.json] [--env NAME] [--only APP]

Starts the app's supervisor (nodescale run) in the background and returns once every worker is ready, or exits 1
with the reason. Its output and its workers' go to its own log file, rotated by the supervisor: nodescale logs NAME.
There is no daemon: nodescale ls lists the apps, stop/reload/scale/status --name NAME act on one, and each app's
supervisor is a process of its own. With no app, the config file of this directory starts every app in it.

Options:
  (for an app file: every option of nodescale run; --name NAME names it, default the file's name)
      --env NAME     a config file's env_NAME blocks, merged over env
      --only APP     start only that app of the config file
      --wait DUR     how long to wait for the workers to be ready (default ${formatDuration(DEFAULT_WAIT_MS)})
  -h, --help         this help

Examples:
  nodescale start server.js -w 2 -- --port 3000
  nodescale start                       # every app of ./nodescale.config.json
  nodescale start --env production --only api`;

/** Splits start's own flags (--env, --only, --wait) from run's. */
function ownFlags(argv: string[]): { own: string[]; rest: string[] } {
  const own: string[] = [];
  const rest: string[] = [];
  const dash = argv.indexOf('--');
  const flags = dash === -1 ? argv : argv.slice(0, dash);
  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i]!;
    const name = /^--(env|only|wait)(=|$)/.exec(arg);
    if (name !== null) {
      own.push(arg);
      if (name[2] === '' && i + 1 < flags.length) own.push(flags[++i]!);
    } else rest.push(arg);
  }
  return { own, rest: dash === -1 ? rest : [...rest, ...argv.slice(dash)] };
}

async function start(argv: string[], io: Io): Promise<number> {
  const { own, rest } = ownFlags(argv);
  const { values } = parseCommandLine('start', own, START_FLAGS, 0);
  const waitMs = durationFlag(values, 'wait') ?? DEFAULT_WAIT_MS;
  const environment = textFlag(values, 'env');
  const only = textFlag(values, 'only');
  const first = rest[0];
  const configFile =
    first === undefined || first === '--' ? findConfig(process.cwd()) : isConfigFile(first) ? first : null;
  let specs: StartSpec[];
  if (configFile !== null) {
    if (rest.length > (first === undefined || first === '--' ? 0 : 1))
      throw new NodescaleError('NS_ERR_USAGE', 'start with a config file takes no run options: they go in the file');
    specs = configSpecs(await loadConfig(configFile), environment, only);
  } else {
    if (first === undefined || first === '--')
      throw new NodescaleError(
        'NS_ERR_USAGE',
        'give the app file (nodescale start server.js), or run it where nodescale.config.json is',
      );
    if (environment !== undefined || only !== undefined)
      throw new NodescaleError('NS_ERR_USAGE', '--env and --only are for a config file');
    for (const arg of rest.slice(0, rest.includes('--') ? rest.indexOf('--') : rest.length))
      if (/^--(control|log-file)(=|$)/.test(arg))
        throw new NodescaleError('NS_ERR_USAGE', `start chooses ${arg.split('=')[0]} itself (nodescale run takes it)`);
    // Checked here, whole, as run would: a bad flag exits 2 now, not in a background process.
    const dash = rest.includes('--') ? rest.indexOf('--') : rest.length;
    const parsed = parseRunArgs([...rest.slice(0, dash), '--log-file', '/dev/null', ...rest.slice(dash)]);
    const name = checkAppName(path.basename(parsed.control, '.sock').replace(/^run-/, ''));
    // The app's path made absolute where it stands (the supervisor runs in this directory, but restart may not).
    const runArgs = [...rest];
    const at = runArgs.findIndex((arg) => !arg.startsWith('-') && path.resolve(arg) === parsed.supervisor.app);
    runArgs[at] = parsed.supervisor.app;
    if (!rest.some((arg) => /^--name(=|$)/.test(arg))) runArgs.splice(1, 0, '--name', name);
    specs = [{ name, runArgs, cwd: process.cwd(), env: {}, config: null }];
  }
  let failed = 0;
  for (const spec of specs) {
    try {
      const { pid, workers } = await startApp(spec, waitMs, io);
      io.stdout.write(
        `started ${spec.name} (supervisor pid ${pid}): ${workers} worker(s) ready; its log: nodescale logs ${spec.name}\n`,
      );
    } catch (error) {
      if (specs.length === 1) throw error;
      failed++;
      io.stderr.write(
        `error ${(error as NodescaleError).code ?? 'NS_ERR_START_FAILED'}: ${(error as Error).message}\n`,
      );
    }
  }
  return failed === 0 ? 0 : 1;
}

export const startCommand: Command = { name: 'start', help: startHelp, run: start };

// restart

const RESTART_FLAGS = { env: { type: 'string' }, wait: { type: 'string' }, ...COMMON_FLAGS } as const;

export const restartHelp = `Usage: nodescale restart NAME [--env NAME] [--wait DUR]
       nodescale restart                 (every app of ./nodescale.config.json, in order)

Stops the app (its workers drain) and starts it again as it was started: an app of a config file from the file as
it is now, with this shell's environment under the file's env. For new code without a moment down, use
nodescale reload --name NAME instead.`;

async function restart(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine('restart', argv, RESTART_FLAGS, 1);
  const waitMs = durationFlag(values, 'wait') ?? DEFAULT_WAIT_MS;
  const environment = textFlag(values, 'env');
  const name = positionals[0];
  let specs: StartSpec[];
  if (name === undefined) {
    const file = findConfig(process.cwd());
    if (file === null) throw new NodescaleError('NS_ERR_USAGE', "give the app's NAME (nodescale ls lists them)");
    specs = configSpecs(await loadConfig(file), environment);
  } else {
    const record = readStartRecord(checkAppName(name));
    if (record === null)
      throw new NodescaleError('NS_ERR_APP_UNKNOWN', `no app ${name} was started with nodescale start (nodescale ls)`);
    specs =
      record.config !== null
        ? configSpecs(await loadConfig(record.config), environment, name)
        : [{ name, runArgs: record.runArgs, cwd: record.cwd, env: {}, config: null }];
  }
  for (const spec of specs) {
    const pid = await runningPid(spec.name);
    if (pid !== null) {
      await askSupervisor(defaultControlPath(spec.name), 'stop', {}, 10 * 60_000);
      await untilGone(pid);
    }
    const started = await startApp(spec, waitMs, io);
    io.stdout.write(`restarted ${spec.name} (supervisor pid ${started.pid}): ${started.workers} worker(s) ready\n`);
  }
  return 0;
}

export const restartCommand: Command = { name: 'restart', help: restartHelp, run: restart };
