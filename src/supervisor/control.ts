/**
 * The supervisor's control socket: a private Unix socket (0600 in a 0700 directory) speaking the admin console's
 * NDJSON protocol, for `nodescale status`, `reload`, `scale` and `stop`, and for finding a worker's admin console
 * (`nodescale console --name APP --worker N`). Being this user is the authentication.
 */
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../admin/client.ts';
import { answerCommand, serveConnection, unknownCommand, type SocketCommand } from '../admin/connection.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { listenPrivateSocket, removeSocket } from '../admin/unix-socket.ts';
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

export function defaultControlPath(name: string): string {
  return path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`, `run-${name}.sock`);
}

export interface ControlServer {
  path: string;
  close(): void;
}

interface ControlContext {
  supervisor: Supervisor;
  onStop: () => void;
}

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
        workers: supervisor.status(),
        failed: supervisor.failedSlots(),
        reload: supervisor.lastReload,
      }),
    },
  ],
  ['reload', { run: ({ supervisor }) => supervisor.reload() }],
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
      run: ({ onStop }) => {
        // Answered first: the supervisor's stop closes this socket.
        setImmediate(onStop);
        return { stopping: true };
      },
    },
  ],
]);

export async function startControl(
  socketPath: string,
  supervisor: Supervisor,
  onStop: () => void,
): Promise<ControlServer> {
  const context: ControlContext = { supervisor, onStop };
  const server = await listenPrivateSocket(socketPath, (socket) => {
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
  return {
    path: socketPath,
    close: () => {
      server.close();
      removeSocket(socketPath);
    },
  };
}
