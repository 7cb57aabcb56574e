/**
 * `nodescale console <target> [command]`: the admin console's client. One-shot for scripts, interactive otherwise.
 * Its files (snapshots, profiles streamed to disk) are console-files.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import readline from 'node:readline';
import { AdminClient, type ConnectOptions } from '../socket/client.ts';
import { outputFile, receiveFile } from '../admin/files.ts';
import { ADMIN_COMMANDS } from '../admin/commands.ts';
import { renderFlameGraph, type CpuProfile } from '../admin/flamegraph.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import type { RequestLogEntry } from '../runtime/runtime.ts';
import type { RuntimeSample } from '../runtime/sampler.ts';
import { frameLocation, type StallFrame } from '../runtime/stall-file.ts';
import type { StallReport } from '../runtime/stall.ts';
import { chartWidth, renderCharts } from './charts.ts';
import { formatBytes, formatMs } from '../units.ts';
import { connectSupervisor } from '../supervisor/control.ts';
import { controlPath } from './supervise.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  durationFlag,
  intFlag,
  numberFlag,
  parseCommandLine,
  requirePositional,
  textFlag,
  type OptionSpecs,
  type Values,
} from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  token: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  out: { type: 'string', short: 'o' },
  seconds: { type: 'string' },
  minutes: { type: 'string' },
  grace: { type: 'string' },
  count: { type: 'string' },
  worker: { type: 'string' },
  name: { type: 'string' },
  control: { type: 'string' },
  ...COMMON_FLAGS,
} as const satisfies OptionSpecs;

/** How each command is written on this command line (its arguments are flags); null: not a command for the CLI. */
const CLI_FORMS: Record<string, string | null> = {
  samples: 'samples [N | --count N]',
  'cpu-profile': 'cpu-profile [--seconds D] [-o F]',
  'heap-snapshot': 'heap-snapshot [-o F]',
  inspect: 'inspect [--minutes N]',
  instrument: 'instrument on|off',
  shutdown: 'shutdown [--grace DUR]',
  // What ends a watch: Ctrl-C (or q) does it for the CLI.
  unwatch: null,
};

export const help = `Usage: nodescale console <target> [command] [options]
       nodescale console --name APP --worker N [command] [options]

Connect to the admin console of a live process (protect(server, { admin: … })): a Unix socket path, or host:port
over TLS; or the console of worker N of \`nodescale run --console\`, found through its control socket. Without a
command on a terminal, an interactive console with history and Tab completion.

Commands:
${[...ADMIN_COMMANDS]
  .filter(([name]) => CLI_FORMS[name] !== null)
  .map(
    ([name, c]) =>
      `  ${(CLI_FORMS[name] ?? name).padEnd(33)} ${c.summary.replace(/ \(args: [^)]*\)/, '').replace('until "unwatch" or disconnect', 'until Ctrl-C or q')}`,
  )
  .join('\n')}

Options:
      --token T         the admin token (or --token-file F; the NODESCALE_ADMIN_TOKEN environment variable)
      --ca F            CA certificate of the server (TLS); --cert F --key F for a client certificate
  -o, --out FILE|DIR    where heap-snapshot and cpu-profile write (default: a new file in
                        <tmpdir>/nodescale-<uid>/profiles, private to this user)
      --seconds DUR     cpu-profile: how long (default 5s, at most 300s; a bare number is seconds)
      --grace DUR       shutdown: the grace period (a bare number is seconds)
      --count N         samples: how many
      --json            print results as JSON
      --worker N        a worker of nodescale run (with --name APP or --control PATH, as for nodescale status)

Examples:
  nodescale console /tmp/nodescale-0/nodescale-4242.sock stats --json
  nodescale console /tmp/nodescale-0/nodescale-4242.sock cpu-profile --seconds 10 -o api.cpuprofile
  nodescale console 127.0.0.1:9901 --ca ca.pem --token-file admin.token shutdown --grace 30
  nodescale console --name server --worker 1 cpu-profile --seconds 10`;

interface ConsoleArgs {
  /** A socket path or host:port; or a worker of a supervisor, reached through its control socket. */
  target: string | { control: string; worker: number };
  command: string | null;
  args: Record<string, unknown>;
  connect: ConnectOptions;
  out: string | null;
  json: boolean;
}

function commandArgs(command: string, values: Values, rest: string[]): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (command === 'instrument') {
    if (rest[0] !== 'on' && rest[0] !== 'off')
      throw new NodescaleError('NS_ERR_USAGE', 'console: instrument takes on or off');
    args.on = rest[0] === 'on';
  } else if (command === 'samples' && rest.length === 1 && values.count === undefined) {
    // `samples 5`, as the command's help reads (args: count), as well as `samples --count 5`.
    if (!/^\d+$/.test(rest[0]!) || Number(rest[0]) < 1) throw invalidOption('samples', 'a whole number ≥ 1', rest[0]);
    args.count = Number(rest[0]);
  } else if (rest.length > 0) {
    throw new NodescaleError('NS_ERR_USAGE', `console: unexpected argument "${rest[0]}"`);
  }
  // Durations as every command takes them (2s, 500ms, 1m), a bare number being seconds.
  const secondsValue = durationFlag(values, 'seconds');
  if (secondsValue !== undefined) args.seconds = secondsValue / 1000;
  const grace = durationFlag(values, 'grace');
  if (grace !== undefined) args.grace = grace / 1000;
  const count = numberFlag(values, 'count', true);
  if (count !== undefined) args.count = count;
  const minutes = numberFlag(values, 'minutes', true);
  if (minutes !== undefined) args.minutes = minutes;
  return args;
}

export function parseConsoleArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ConsoleArgs {
  const { values, positionals } = parseCommandLine('console', argv, FLAGS, 3);
  const worker = intFlag(values, 'worker');
  if (worker !== undefined && worker < 0) throw invalidOption('--worker', 'a worker number (0 or more)', worker);
  if (worker === undefined && (textFlag(values, 'name') !== undefined || textFlag(values, 'control') !== undefined)) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'console: --name and --control reach a worker of nodescale run: give --worker N too',
    );
  }
  // With --worker, the supervisor's control socket names the target: the positionals start with the command.
  const target =
    worker === undefined
      ? requirePositional('console', positionals, 'the target (a socket path or host:port)')
      : { control: controlPath(values, null), worker };
  const commandAt = worker === undefined ? 1 : 0;
  const command = positionals[commandAt] ?? null;
  if (command !== null && !ADMIN_COMMANDS.has(command)) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `console: unknown command "${command}"; the commands are ${[...ADMIN_COMMANDS.keys()].join(', ')}`,
    );
  }
  const read = (name: string) => {
    const file = textFlag(values, name);
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `cannot read --${name} ${file}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  };
  const tokenFile = read('token-file');
  const token = textFlag(values, 'token') ?? tokenFile?.toString('utf8').trim() ?? env.NODESCALE_ADMIN_TOKEN;
  const connect: ConnectOptions = {};
  if (token !== undefined) connect.token = token;
  for (const name of ['ca', 'cert', 'key'] as const) {
    const content = read(name);
    if (content !== undefined) connect[name] = content;
  }
  return {
    target,
    command,
    args: command === null ? {} : commandArgs(command, values, positionals.slice(commandAt + 1)),
    connect,
    out: textFlag(values, 'out') ?? null,
    json: boolFlag(values, 'json'),
  };
}

function sampleLine(s: RuntimeSample): string {
  const time = new Date(s.time).toISOString().slice(11, 19);
  const percent = (ratio: number) => `${(ratio * 100).toFixed(0).padStart(3)}%`;
  return [
    time,
    `loop p99 ${formatMs(s.eventLoop.delayP99Ms).padStart(7)}`,
    `util ${percent(s.eventLoop.utilization)}`,
    `cpu ${percent(s.cpu.percent / 100)}`,
    `heap ${formatBytes(s.memory.heapUsed).padStart(10)}`,
    `${s.http.requestsPerSecond.toFixed(0).padStart(6)} req/s`,
    `${s.http.inFlight} in flight`,
  ].join('  ');
}

/** A stall, for `stalls`: when, how long, the request, then its stack, innermost first. */
function stallLines({ at, heldMs, capture, why }: StallReport & { at: string }): string {
  const head = `${at.slice(11, 23)}  held ${formatMs(heldMs)}`;
  if (capture === null) return `${head}  (not captured: ${why ?? 'stall.maxPerMinute'})\n`;
  const frames = capture.stack
    .slice(0, 12)
    .map((frame) => `    at ${frame.function} (${frameLocation(frame)})`)
    .join('\n');
  const where = (frame: StallFrame) => (frame.url ? ` (${frameLocation(frame)})` : '');
  const profile = capture.profile;
  const profiled =
    profile === null || profile.top.length === 0
      ? ''
      : [
          `  then ${formatMs(profile.durationMs)} profiled; where its ${profile.stacks} stack samples were:`,
          ...profile.top
            .slice(0, 5)
            .map((frame) => `    ${`${Math.round(frame.share * 100)}%`.padStart(4)}  ${frame.function}${where(frame)}`),
          `    ${profile.file ?? ''}`,
          '',
        ].join('\n');
  return `${head}${capture.request ? `  ${capture.request}` : ''}${capture.late ? '  (captured late: native code)' : ''}\n${frames}\n    ${capture.file ?? ''}\n${profiled}`;
}

interface InspectEvent {
  url: string;
  devtools: string;
  closesInMinutes: number;
}

/** Where the inspector `inspect` opened listens, and how to reach it. */
function inspectLines({ url, devtools, closesInMinutes }: InspectEvent): string {
  const port = new URL(url).port;
  return [
    `inspector open at ${url} for this session only: Ctrl-C (or q) closes it, or it closes in ${closesInMinutes} min`,
    `  Chrome DevTools: ${devtools}`,
    `  or chrome://inspect → Configure… → 127.0.0.1:${port}`,
    `  from another machine: ssh -L ${port}:127.0.0.1:${port} <this host>, then the same address`,
    '',
  ].join('\n');
}

/** A line of `log-requests`. */
function requestLine(e: RequestLogEntry): string {
  return `${e.time.slice(11, 23)}  ${String(e.status)}  ${(e.ms === null ? '' : formatMs(e.ms)).padStart(8)}  ${e.method ?? ''} ${e.url ?? ''}`;
}

/** How the answer of a plain command is printed (JSON, indented, for the others). */
const RESULT_VIEWS: Partial<Record<string, (result: unknown, elapsedMs: number) => string>> = {
  ping: (_result, elapsedMs) => `pong (${formatMs(elapsedMs)})`,
  help: (result) =>
    (result as { name: string; summary: string }[]).map((c) => `  ${c.name.padEnd(14)} ${c.summary}`).join('\n'),
};

interface RunOptions {
  out: string | null;
  json: boolean;
  /** Redraw charts in place on the terminal (watch). */
  charts?: boolean;
  title?: string;
}

/** Runs one command on a connected client and prints its result: a file, a stream of events, or an answer. */
async function runOne(
  client: AdminClient,
  command: string,
  args: Record<string, unknown>,
  io: Io,
  options: RunOptions,
): Promise<void> {
  if (command === 'heap-snapshot' || command === 'cpu-profile') return saveToFile(client, command, args, io, options);
  if (command === 'watch' || command === 'log-requests' || command === 'stalls' || command === 'inspect')
    return follow(client, command, io, options);
  const started = performance.now();
  const result = await client.request(command, args);
  const view = RESULT_VIEWS[command];
  io.stdout.write(
    `${options.json ? JSON.stringify(result) : view ? view(result, performance.now() - started) : JSON.stringify(result, null, 2)}\n`,
  );
}

/** heap-snapshot and cpu-profile: the bytes into a file (and a CPU profile as a flame graph beside it). */
async function saveToFile(
  client: AdminClient,
  command: 'heap-snapshot' | 'cpu-profile',
  args: Record<string, unknown>,
  io: Io,
  options: RunOptions,
): Promise<void> {
  const file = outputFile(command, options.out);
  const result = (await receiveFile(client, command, args, file)) as { bytes: number; seconds?: number };
  let flamegraph: string | undefined;
  if (command === 'cpu-profile') {
    // The profile as a flame graph too: where the time went, without opening DevTools.
    flamegraph = file.replace(/\.cpuprofile$/, '') + '.svg';
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    writeFileSync(flamegraph, renderFlameGraph(profile, `CPU profile, ${String(result.seconds ?? '')} s`), {
      mode: 0o600,
    });
  }
  io.stdout.write(
    options.json
      ? `${JSON.stringify({ file, ...result, ...(flamegraph ? { flamegraph } : {}) })}\n`
      : `wrote ${file} (${formatBytes(result.bytes)})${flamegraph ? `, flame graph ${flamegraph}` : ''}\n`,
  );
}

/** watch, log-requests, stalls and inspect: events until Ctrl-C (or q on a terminal), which sends unwatch. */
async function follow(
  client: AdminClient,
  command: 'watch' | 'log-requests' | 'stalls' | 'inspect',
  io: Io,
  options: RunOptions,
): Promise<void> {
  const id = client.nextId;
  const stop = () => void client.request('unwatch', { id }).catch(() => {});
  io.signal.addEventListener('abort', stop, { once: true });
  const terminal = options.charts ? io.terminal : undefined;
  const stopKey = terminal?.stdin ? onQuitKey(terminal.stdin, stop) : () => {};
  const samples: RuntimeSample[] = [];
  let drawn = 0;
  const draw = (sample: RuntimeSample, columns: number) => {
    samples.push(sample);
    if (samples.length > 120) samples.shift();
    const header = `${options.title ?? 'watch'}: q or Ctrl-C stops`;
    const block = `${header.slice(0, columns - 1)}\n${renderCharts(samples, chartWidth(columns))}`;
    // Redraw in place: move up over the last block.
    io.stdout.write(
      `${drawn > 0 ? `\x1b[${drawn}A` : ''}${block
        .split('\n')
        .map((l) => `\x1b[2K${l}`)
        .join('\n')}\n`,
    );
    drawn = block.split('\n').length;
  };
  const onEvent = (event: unknown) => {
    if (options.json) io.stdout.write(`${JSON.stringify(event)}\n`);
    else if (command === 'log-requests') io.stdout.write(`${requestLine(event as RequestLogEntry)}\n`);
    else if (command === 'stalls') io.stdout.write(stallLines(event as StallReport & { at: string }));
    else if (command === 'inspect') io.stdout.write(inspectLines(event as InspectEvent));
    else if (terminal) draw(event as RuntimeSample, terminal.columns());
    else io.stdout.write(`${sampleLine(event as RuntimeSample)}\n`);
  };
  try {
    await client.request(command, {}, { onEvent });
  } finally {
    io.signal.removeEventListener('abort', stop);
    stopKey();
  }
}

/** Calls `stop` when q is pressed on the terminal; returns the function that stops listening. */
function onQuitKey(stdin: NodeJS.ReadStream, stop: () => void): () => void {
  readline.emitKeypressEvents(stdin);
  const wasRaw = stdin.isRaw;
  const wasFlowing = stdin.readableFlowing === true;
  stdin.setRawMode(true);
  stdin.resume();
  const onKey = (_text: string, key: { name?: string; ctrl?: boolean } | undefined) => {
    if (key?.name === 'q' || (key?.ctrl === true && key.name === 'c')) stop();
  };
  stdin.on('keypress', onKey);
  return () => {
    stdin.off('keypress', onKey);
    stdin.setRawMode(wasRaw);
    // The interactive console's readline keeps reading; a one-shot command leaves stdin as it found it.
    if (!wasFlowing) stdin.pause();
  };
}

async function interactive(client: AdminClient, io: Io, stdin: NodeJS.ReadStream, out: string | null): Promise<void> {
  const names = [...ADMIN_COMMANDS.keys(), 'exit'];
  const rl = readline.createInterface({
    input: stdin,
    output: io.stdout,
    prompt: 'nodescale> ',
    historySize: 500,
    completer: (line: string) => [names.filter((n) => n.startsWith(line.trim())), line],
  });
  io.stdout.write('connected. "help" lists the commands, Tab completes, "exit" leaves; Ctrl-C ends a watch.\n');
  // Ctrl-C reaches readline, not the process: it ends the streaming command running, if any.
  let running: AbortController | null = null;
  rl.on('SIGINT', () => {
    if (running !== null) running.abort();
    else io.stdout.write('\n(type "exit" to leave)\n');
    rl.prompt();
  });
  rl.prompt();
  for await (const line of rl) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words[0] === 'exit' || words[0] === 'quit') break;
    if (words.length > 0) {
      try {
        const parsed = parseCommandLine('console', words, FLAGS, 2);
        const command = parsed.positionals[0]!;
        if (!ADMIN_COMMANDS.has(command))
          throw new NodescaleError('NS_ERR_USAGE', `unknown command "${command}"; "help" lists them`);
        running = new AbortController();
        await runOne(
          client,
          command,
          commandArgs(command, parsed.values, parsed.positionals.slice(1)),
          { ...io, signal: running.signal },
          {
            out: textFlag(parsed.values, 'out') ?? out,
            json: boolFlag(parsed.values, 'json'),
            charts: true,
          },
        );
      } catch (error) {
        const e = error as NodescaleError;
        io.stderr.write(`error ${e.code ?? 'NS_ERR_INTERNAL'}: ${e.message}\n`);
      } finally {
        running = null;
      }
      // The key that stopped a watch (q) also reached readline, which keeps it as the start of the next line ("pingq").
      if (words[0] === 'watch' || words[0] === 'log-requests' || words[0] === 'stalls' || words[0] === 'inspect') {
        rl.write(null, { ctrl: true, name: 'e' });
        rl.write(null, { ctrl: true, name: 'u' });
      }
    }
    rl.prompt();
  }
  rl.close();
}

/** Asks the supervisor where worker N's console listens. */
async function workerConsole(control: string, worker: number): Promise<string> {
  const supervisor = await connectSupervisor(control);
  try {
    return ((await supervisor.request('console', { worker })) as { socketPath: string }).socketPath;
  } finally {
    supervisor.close();
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseConsoleArgs(argv);
  try {
    return await connectAndRun(args, io);
  } catch (error) {
    // The protocol's words (send {"cmd":"auth"} first) are for programs; a person is told which flag to pass.
    if ((error as NodescaleError).code === 'NS_ERR_ADMIN_AUTH' && args.connect.token === undefined)
      throw new NodescaleError(
        'NS_ERR_ADMIN_AUTH',
        'this admin console requires a token: pass --token-file FILE (or --token T, or set NODESCALE_ADMIN_TOKEN)',
      );
    throw error;
  }
}

async function connectAndRun(args: ConsoleArgs, io: Io): Promise<number> {
  const target =
    typeof args.target === 'string' ? args.target : await workerConsole(args.target.control, args.target.worker);
  const client = await AdminClient.connect(target, args.connect);
  try {
    const title =
      typeof args.target === 'string' ? args.target : `worker ${args.target.worker} of ${args.target.control}`;
    if (args.command !== null)
      await runOne(client, args.command, args.args, io, {
        ...args,
        title: `${args.command} ${title}`,
        charts: io.interactive,
      });
    else if (io.terminal?.stdin) await interactive(client, io, io.terminal.stdin, args.out);
    else throw new NodescaleError('NS_ERR_USAGE', 'console: give a command (the interactive console needs a terminal)');
    return 0;
  } finally {
    client.close();
  }
}

export const consoleCommand: Command = { name: 'console', help, run };
