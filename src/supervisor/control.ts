/**
 * The supervisor's control socket: a private Unix socket (0600 in a 0700 directory) speaking the admin console's
 * NDJSON protocol, for `nodescale status`, `reload`, `scale` and `stop`, for finding a worker's admin console
 * (`nodescale console --name APP --worker N`), and for the workers' live HTTP timeouts (`nodescale doctor --name`). Being this user is the authentication.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../socket/client.ts';
import { answerCommand, serveConnection, unknownCommand, type SocketCommand } from '../socket/connection.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { listenPrivateSocket, removeSocket } from '../socket/unix-socket.ts';
import type { SupervisorEvent, WorkerSampleEvent } from '../ipc.ts';
import type { WorkerStatus } from './status.ts';
import type { Supervisor } from './supervisor.ts';

/** The client side: a connection to a supervisor's control socket, or NS_ERR_SUPERVISOR_UNREACHABLE. */
export async function connectSupervisor(socketPath: string): Promise<AdminClient> {
  try {
    return await AdminClient.connect(socketPath);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_SUPERVISOR_UNREACHABLE',
      `no supervisor at ${socketPath}: ${(error as Error).message}`,
    );
  }
}

/**
 * One request to a supervisor, with a deadline: a supervisor that is frozen (SIGSTOP, a stuck event loop) accepts the
 * connection in the kernel and never answers, and a caller listing many must not hang on one. Rejects with
 * NS_ERR_SUPERVISOR_UNREACHABLE when it cannot connect or has not answered within `timeoutMs`.
 */
export async function askSupervisor(
  socketPath: string,
  cmd: string,
  args: Record<string, unknown> = {},
  timeoutMs = 2000,
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  let client: AdminClient | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(
        new NodescaleError(
          'NS_ERR_SUPERVISOR_UNREACHABLE',
          `the supervisor at ${socketPath} did not answer within ${timeoutMs} ms (stopped with SIGSTOP, or its event loop is stuck)`,
        ),
      );
    }, timeoutMs);
  });
  const asked = (async () => {
    client = await connectSupervisor(socketPath);
    // Connected after the deadline: nobody waits for it.
    if (late) client.destroy();
    return client.request(cmd, args);
  })();
  asked.catch(() => {}); // settled after the deadline: already reported
  try {
    return await Promise.race([asked, deadline]);
  } finally {
    clearTimeout(timer);
    // A peer that did not answer may never close its end either: destroy, do not wait for it.
    if (late) client?.destroy();
    else client?.close();
  }
}

export function defaultControlPath(name: string): string {
  return path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`, `run-${name}.sock`);
}

export interface ControlServer {
  path: string;
  close(): void;
}

/** How a stop ended: 0 when every worker drained, 1 when some were killed at the end of the grace period. */
export interface StopOutcome {
  code: number;
  killed: number;
}

interface ControlContext {
  supervisor: Supervisor;
  onStop: () => Promise<StopOutcome>;
  /** Streams an event of request `id` (reload progress) to the connection that asked. */
  send: (id: number, event: unknown) => void;
  /** Resolves when the connection that asked closes. */
  closed: Promise<void>;
  /** Bytes written to that connection and not yet taken by its reader. */
  backlog: () => number;
  /** Marks that connection as a watch: it is ended when the supervisor stops. */
  watching: () => void;
}

/** What `watch` streams: the supervisor's events and samples as they come, its workers' status every second. */
export type WatchMessage =
  | { type: 'event'; event: SupervisorEvent }
  | { type: 'sample'; sample: WorkerSampleEvent }
  | { type: 'status'; workers: WorkerStatus[] };

/** A watcher that reads slower than this is written to loses samples (never events) until it catches up. */
const WATCH_BACKLOG_BYTES = 1 << 20;

/** The control socket's commands; each throws a NodescaleError with its code when it cannot do what was asked. */
export const CONTROL_COMMANDS: ReadonlyMap<string, SocketCommand<ControlContext>> = new Map<
  string,
  SocketCommand<ControlContext>
>([
  [
    'status',
    {
      run: ({ supervisor }) => ({
        pid: process.pid,
        since: supervisor.since.toISOString(),
        started: supervisor.started,
        app: supervisor.options.app,
        workers: supervisor.status(),
        failed: supervisor.failedSlots(),
        reload: supervisor.lastReload,
      }),
    },
  ],
  [
    'servers',
    {
      // Each worker's HTTP servers and their timeouts as they are now, for `nodescale doctor --name`.
      run: async ({ supervisor }) => ({ pid: process.pid, workers: await supervisor.workerServers(2000) }),
    },
  ],
  [
    'reload',
    {
      // The progress is streamed as events of the request while it runs: each slot replaced, the probation begun.
      run: async ({ supervisor, send }, id) => {
        const onProgress = (progress: unknown) => send(id, progress);
        supervisor.on('reload-progress', onProgress);
        try {
          return await supervisor.reload();
        } finally {
          supervisor.off('reload-progress', onProgress);
        }
      },
    },
  ],
  [
    'watch',
    {
      // For `nodescale dashboard --name` and `nodescale top`: streamed until the connection closes; never answered.
      run: async ({ supervisor, send, closed, backlog, watching }, id) => {
        watching();
        const onEvent = (event: SupervisorEvent) => send(id, { type: 'event', event } satisfies WatchMessage);
        const onSample = (sample: WorkerSampleEvent) => {
          if (backlog() < WATCH_BACKLOG_BYTES) send(id, { type: 'sample', sample } satisfies WatchMessage);
        };
        const status = () => send(id, { type: 'status', workers: supervisor.status() } satisfies WatchMessage);
        supervisor.on('event', onEvent);
        supervisor.on('sample', onSample);
        status();
        const timer = setInterval(status, 1000);
        timer.unref();
        try {
          await closed;
        } finally {
          clearInterval(timer);
          supervisor.off('event', onEvent);
          supervisor.off('sample', onSample);
        }
        return {};
      },
    },
  ],
  [
    'scale',
    {
      run: ({ supervisor }, _id, { workers }) => {
        if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 1024)
          throw invalidOption('workers', 'a whole number from 1 to 1024', workers);
        return supervisor.scale(workers);
      },
    },
  ],
  [
    'console',
    {
      run: ({ supervisor }, _id, { worker }) => {
        const found =
          typeof worker === 'number' && Number.isInteger(worker)
            ? supervisor.workerConsole(worker)
            : { error: `worker must be a worker number, got ${JSON.stringify(worker)}` };
        if ('error' in found) throw new NodescaleError('NS_ERR_WORKER_NO_CONSOLE', found.error);
        return found;
      },
    },
  ],
  [
    'stop',
    {
      // Answered once the supervisor has stopped (its workers drained or killed, its sockets closed), so that
      // `nodescale stop && nodescale run` finds the name free; { wait: false } answers at once.
      run: async ({ onStop }, _id, { wait }) => {
        const stopped = onStop();
        if (wait === false) return { stopping: true, pid: process.pid };
        return { stopped: true, pid: process.pid, ...(await stopped) };
      },
    },
  ],
]);

export async function startControl(
  socketPath: string,
  supervisor: Supervisor,
  onStop: () => Promise<StopOutcome>,
): Promise<ControlServer> {
  // Watches end with the supervisor: a `watch` (a dashboard, top) never ends by itself, and would keep this process
  // alive after its stop. (Other connections are left to finish: `stop` is answered once stopped.)
  const watchers = new Set<net.Socket>();
  const server = await listenPrivateSocket(socketPath, (socket) => {
    const context: ControlContext = {
      supervisor,
      onStop,
      send: (id, event) => connection.send({ id, event }),
      closed: new Promise((resolve) => socket.once('close', () => resolve())),
      backlog: () => socket.writableLength,
      watching: () => {
        watchers.add(socket);
        socket.once('close', () => watchers.delete(socket));
      },
    };
    const connection = serveConnection(socket, {
      maxLineBytes: 64 * 1024,
      maxBadMessages: 10,
      onRequest: (request) => {
        const command = CONTROL_COMMANDS.get(request.cmd);
        if (command === undefined)
          unknownCommand(connection, request, `the commands are ${[...CONTROL_COMMANDS.keys()].join(', ')}`);
        else void answerCommand(connection, command, context, request);
      },
    });
  });
  server.unref();
  // Beside the socket, whose process it is: a socket that does not answer is then told apart as frozen (its process
  // there) or dead (gone), by `nodescale ls`.
  writeFileSync(controlPidFile(socketPath), `${process.pid}\n`, { mode: 0o600 });
  return {
    path: socketPath,
    close: () => {
      server.close();
      for (const socket of watchers) socket.destroy();
      removeSocket(socketPath);
      rmSync(controlPidFile(socketPath), { force: true });
    },
  };
}

export const controlPidFile = (socketPath: string) => `${socketPath}.pid`;

/** The pid written beside a control socket, or null. */
export function controlPid(socketPath: string): number | null {
  try {
    const pid = Number(readFileSync(controlPidFile(socketPath), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
