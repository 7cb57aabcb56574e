/**
 * The supervisor's control socket: a private Unix socket (0600 in a 0700 directory) speaking the admin console's
 * NDJSON protocol, for `nodescale status`, `reload`, `scale` and `stop`, and for finding a worker's admin console
 * (`nodescale console --name APP --worker N`). Being this user is the authentication.
 */
import os from 'node:os';
import path from 'node:path';
import { AdminClient } from '../admin/client.ts';
import { encode, LineReader, parseRequest, type AdminMessage } from '../admin/protocol.ts';
import { NodescaleError } from '../errors.ts';
import { listenPrivateSocket, removeSocket } from '../admin/unix-socket.ts';
import type { Supervisor } from './supervisor.ts';

/** The client side: a connection to a supervisor's control socket, or NS_ERR_SUPERVISOR_UNREACHABLE. */
export async function connectSupervisor(socketPath: string): Promise<AdminClient> {
  try {
    return await AdminClient.connect(socketPath);
  } catch (error) {
    throw new NodescaleError('NS_ERR_SUPERVISOR_UNREACHABLE', `no supervisor at ${socketPath}: ${(error as Error).message}`);
  }
}

export function defaultControlPath(name: string): string {
  return path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`, `run-${name}.sock`);
}

export interface ControlServer {
  path: string;
  close(): void;
}

export async function startControl(socketPath: string, supervisor: Supervisor, onStop: () => void): Promise<ControlServer> {
  const server = await listenPrivateSocket(socketPath, (socket) => {
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    const reader = new LineReader(64 * 1024);
    const send = (message: AdminMessage) => !socket.destroyed && socket.write(encode(message));
    socket.on('data', (chunk: string) => {
      for (const line of reader.push(chunk)) {
        if (typeof line !== 'string') {
          send({ id: -1, ok: false, error: { code: 'NS_ERR_ADMIN_BAD_MESSAGE', message: line.message } });
          continue;
        }
        if (line.trim() === '') continue;
        const request = parseRequest(line);
        if ('error' in request) {
          send({ id: request.id ?? -1, ok: false, error: { code: 'NS_ERR_ADMIN_BAD_MESSAGE', message: request.error } });
          continue;
        }
        const { id, cmd } = request;
        if (cmd === 'status') send({ id, ok: true, result: { pid: process.pid, workers: supervisor.status(), failed: supervisor.failedSlots(), reload: supervisor.lastReload } });
        else if (cmd === 'reload') void supervisor.reload().then((outcome) => send({ id, ok: true, result: outcome }));
        else if (cmd === 'scale') {
          const workers = request.args?.workers;
          if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 1024) {
            send({ id, ok: false, error: { code: 'NS_ERR_INVALID_OPTION', message: `workers must be a whole number from 1 to 1024, got ${JSON.stringify(workers)}` } });
          } else {
            supervisor.scale(workers).then(
              (result) => send({ id, ok: true, result }),
              (error: Error) => send({ id, ok: false, error: { code: 'NS_ERR_APP_CRASH_LOOP', message: error.message } }),
            );
          }
        } else if (cmd === 'console') {
          const worker = request.args?.worker;
          const found = typeof worker === 'number' && Number.isInteger(worker) ? supervisor.workerConsole(worker) : { error: `worker must be a worker number, got ${JSON.stringify(worker)}` };
          if ('error' in found) send({ id, ok: false, error: { code: 'NS_ERR_WORKER_NO_CONSOLE', message: found.error } });
          else send({ id, ok: true, result: found });
        } else if (cmd === 'stop') {
          send({ id, ok: true, result: { stopping: true } });
          onStop();
        } else send({ id, ok: false, error: { code: 'NS_ERR_ADMIN_UNKNOWN_COMMAND', message: `unknown command "${cmd}"; the commands are status, reload, scale, console, stop` } });
      }
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
