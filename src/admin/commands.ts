/**
 * The admin console's commands: a fixed list. There is no eval, and no way to run code that is not here.
 */
import { once } from 'node:events';
import inspector, { Session } from 'node:inspector/promises';
import type net from 'node:net';
import { inspect } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { invalidOption, NodescaleError } from '../errors.ts';
import { redactArgv, redactedReport } from '../redact.ts';
import type { SocketCommand } from '../socket/connection.ts';
import type { ConsoleTarget } from './target.ts';
import type { AdminMessage } from '../socket/protocol.ts';

export interface CommandContext {
  runtime: ConsoleTarget;
  socket: net.Socket;
  send(message: AdminMessage): void;
  /** 'unix', or the remote address over TCP. */
  peer: string;
  tcp: boolean;
}

export interface AdminCommand extends SocketCommand<CommandContext> {
  summary: string;
  /** Resolves to the result; streamed commands send chunks or events on the way. */
  run(ctx: CommandContext, id: number, args: Record<string, unknown>): Promise<unknown>;
  /** What of the arguments goes to the audit log (all of them by default). */
  auditArgs?(args: Record<string, unknown>): Record<string, unknown>;
}

const STREAM_CHUNK = 256 * 1024;

/** Streams bytes as base64 chunks, waiting for the socket to drain: a large snapshot does not pile up in memory. */
async function streamBytes(
  ctx: CommandContext,
  id: number,
  source: AsyncIterable<Buffer | string> | Iterable<Buffer>,
): Promise<number> {
  let bytes = 0;
  for await (const piece of source) {
    const buf = typeof piece === 'string' ? Buffer.from(piece) : piece;
    for (let offset = 0; offset < buf.length; offset += STREAM_CHUNK) {
      const part = buf.subarray(offset, offset + STREAM_CHUNK);
      bytes += part.length;
      ctx.send({ id, chunk: part.toString('base64') });
      if (ctx.socket.writableNeedDrain) await once(ctx.socket, 'drain');
      if (ctx.socket.destroyed) throw new Error('the console disconnected');
    }
  }
  return bytes;
}

function seconds(args: Record<string, unknown>, name: string, fallback: number, max: number, unit = 'seconds'): number {
  const value = args[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max)
    throw invalidOption(name, `a number of ${unit} above 0, at most ${max}`, value);
  return value;
}

/** Active streams (watch, log-requests) of each connection, so that `unwatch` and a disconnect end them. */
const watches = new WeakMap<net.Socket, Map<number, () => void>>();

/** Sends the runtime's `event` (a RuntimeSample, a RequestLogEntry) as events of request `id`, until stopped. */
async function streamEvents(ctx: CommandContext, id: number, event: 'sample' | 'request' | 'stall'): Promise<void> {
  const forward = (payload: unknown) => ctx.send({ id, event: payload });
  ctx.runtime.on(event, forward);
  await untilStopped(ctx, id, () => ctx.runtime.off(event, forward));
}

/** Resolves when the stream `id` is ended by `unwatch` or by the connection closing; `cleanup` runs once. */
function untilStopped(ctx: CommandContext, id: number, cleanup: () => void): Promise<void> {
  let active = watches.get(ctx.socket);
  if (active === undefined) watches.set(ctx.socket, (active = new Map()));
  const streams = active;
  return new Promise<void>((resolve) => {
    const stop = () => {
      if (!streams.has(id)) return;
      streams.delete(id);
      cleanup();
      resolve();
    };
    streams.set(id, stop);
    ctx.socket.once('close', stop);
  });
}

/** A command that streams the runtime's `event` until unwatched; its result is `{ [resultKey]: id }`. */
function streamCommand(summary: string, event: 'sample' | 'request', resultKey: string): AdminCommand {
  return {
    summary,
    run: async (ctx, id) => {
      await streamEvents(ctx, id, event);
      return { [resultKey]: id };
    },
  };
}

export const ADMIN_COMMANDS: ReadonlyMap<string, AdminCommand> = new Map<string, AdminCommand>([
  ['ping', { summary: 'check the process answers', run: async () => ({ pong: true, time: new Date().toISOString() }) }],
  [
    'help',
    {
      summary: 'list the commands',
      run: async (): Promise<unknown> =>
        [...ADMIN_COMMANDS].map(([name, command]) => ({ name, summary: command.summary })),
    },
  ],
  [
    'info',
    {
      summary: 'pid, versions, uptime, flags, listening addresses',
      run: async (ctx) => ({
        pid: process.pid,
        ppid: process.ppid,
        title: process.title,
        versions: { node: process.versions.node, v8: process.versions.v8, uv: process.versions.uv },
        platform: `${process.platform}/${process.arch}`,
        uptimeSeconds: Math.round(process.uptime()),
        execArgv: redactArgv(process.execArgv),
        argv: redactArgv(process.argv.slice(1)),
        cwd: process.cwd(),
        readiness: ctx.runtime.readiness,
        instrumented: ctx.runtime.instrumented,
        listening: ctx.runtime.listeningAddress(),
        heapLimitBytes: v8.getHeapStatistics().heap_size_limit,
      }),
    },
  ],
  [
    'stats',
    {
      summary: 'the latest runtime sample, readiness, overload and in-flight requests',
      run: async (ctx) => ({
        sample: ctx.runtime.latest() ?? null,
        readiness: ctx.runtime.readiness,
        overload: ctx.runtime.overload,
        inFlight: ctx.runtime.inFlightCount,
        instrumented: ctx.runtime.instrumented,
      }),
    },
  ],
  [
    'samples',
    {
      summary: 'the most recent samples (args: count, default 60)',
      run: async (ctx, _id, args) => {
        const count = args.count ?? 60;
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1)
          throw invalidOption('count', 'a whole number ≥ 1', count);
        return ctx.runtime.samples(count);
      },
    },
  ],
  ['watch', streamCommand('stream every new sample as an event until "unwatch" or disconnect', 'sample', 'watched')],
  [
    'unwatch',
    {
      summary: 'end a watch or log-requests (args: id, its request id)',
      run: async (ctx, _id, args) => {
        const stop = watches.get(ctx.socket)?.get(Number(args.id));
        if (stop === undefined) throw invalidOption('id', 'the id of an active watch on this connection', args.id);
        stop();
        return { unwatched: args.id };
      },
    },
  ],
  [
    'log-requests',
    streamCommand('stream a log line for every completed request until "unwatch" or disconnect', 'request', 'logged'),
  ],
  [
    'stalls',
    {
      summary: 'the last stalls of the event loop (stall capture), then each new one until "unwatch" or disconnect',
      run: async (ctx, id) => {
        if (ctx.runtime.options.stall === null)
          throw new NodescaleError(
            'NS_ERR_STALL_OFF',
            'stall capture is off in this process: protect(server, { stall: true }) turns it on',
          );
        for (const stall of ctx.runtime.recentStalls()) ctx.send({ id, event: stall });
        await streamEvents(ctx, id, 'stall');
        return { stalls: id };
      },
    },
  ],
  [
    'inspect',
    {
      summary:
        'open the inspector on 127.0.0.1 (a random port) for Chrome DevTools until "unwatch" or disconnect (args: minutes, default 30, at most 240)',
      run: async (ctx, id, args) => {
        const minutes = seconds(args, 'minutes', 30, 240, 'minutes');
        if (inspector.url() !== undefined)
          throw new NodescaleError(
            'NS_ERR_INSPECT_OPEN',
            `the inspector is open already (${inspector.url()!.replace(/\/[\w-]+$/, '/…')}): started with --inspect, or another console's inspect`,
          );
        // Loopback only, never 0.0.0.0; a random port; not waiting for a debugger. Closed when this session ends.
        inspector.open(0, '127.0.0.1', false);
        const url = inspector.url()!;
        ctx.runtime.options.logger('warn', 'inspector opened by the admin console', { peer: ctx.peer, minutes });
        ctx.send({
          id,
          event: {
            url,
            devtools: `devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=${url.slice('ws://'.length)}`,
            closesInMinutes: minutes,
          },
        });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          untilStopped(ctx, id, () => {}),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, minutes * 60_000))),
        ]);
        clearTimeout(timer);
        inspector.close();
        ctx.runtime.options.logger('info', 'inspector closed', { peer: ctx.peer });
        return { closed: true };
      },
    },
  ],
  [
    'instrument',
    {
      summary: 'switch instrumentation on or off (args: on, true or false)',
      run: async (ctx, _id, args) => {
        if (typeof args.on !== 'boolean') throw invalidOption('on', 'true or false', args.on);
        ctx.runtime.instrument(args.on);
        return { instrumented: ctx.runtime.instrumented };
      },
    },
  ],
  [
    'heap-snapshot',
    {
      summary: 'a V8 heap snapshot, streamed to the console (open it in Chrome DevTools → Memory)',
      run: async (ctx, id) => ({ bytes: await streamBytes(ctx, id, v8.getHeapSnapshot()) }),
    },
  ],
  [
    'cpu-profile',
    {
      summary: 'profile the CPU for a while (args: seconds, default 5, at most 300), streamed as a .cpuprofile',
      run: async (ctx, id, args) => {
        const duration = seconds(args, 'seconds', 5, 300);
        const session = new Session();
        session.connect();
        try {
          await session.post('Profiler.enable');
          await session.post('Profiler.start');
          await new Promise((resolve) => setTimeout(resolve, duration * 1000));
          const { profile } = await session.post('Profiler.stop');
          return { bytes: await streamBytes(ctx, id, [Buffer.from(JSON.stringify(profile))]), seconds: duration };
        } finally {
          session.disconnect();
        }
      },
    },
  ],
  [
    'report',
    {
      summary: 'the diagnostic report (process.report), environment variable values redacted',
      run: async () => redactedReport(),
    },
  ],
  [
    'shutdown',
    {
      summary: 'shut down gracefully: drain in-flight requests, run cleanup hooks, exit (args: grace, seconds)',
      run: async (ctx, _id, args) => {
        const graceMs = args.grace === undefined ? undefined : seconds(args, 'grace', 10, 3600) * 1000;
        // Answer first: the process is about to go.
        setImmediate(() => void ctx.runtime.shutdown(`admin console (${ctx.peer})`, graceMs));
        return { shuttingDown: true, inFlight: ctx.runtime.inFlightCount };
      },
    },
  ],
]);

/**
 * `eval`, only when the app sets admin.allowEval, and never over TCP: runs code in the process's global context and
 * returns what it evaluates to (awaited), inspected. The audit log records the code's length, not the code.
 */
export const EVAL_COMMAND: AdminCommand = {
  summary: 'evaluate JavaScript in the process (only with admin.allowEval, only on the Unix socket)',
  run: async (ctx, _id, args) => {
    if (ctx.tcp) throw new NodescaleError('NS_ERR_ADMIN_INSECURE', 'eval is never allowed over TCP');
    if (typeof args.code !== 'string') throw invalidOption('code', 'a string of JavaScript', args.code);
    const value: unknown = await vm.runInThisContext(args.code, { filename: 'nodescale-console-eval' });
    return { result: inspect(value, { depth: 4, breakLength: 120 }) };
  },
  auditArgs: (args) => ({ codeLength: typeof args.code === 'string' ? args.code.length : null }),
};
