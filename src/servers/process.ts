/**
 * What starting a real server from the PATH needs, whichever it is (RabbitMQ, Redis): finding it, free ports, waiting
 * until it accepts connections, and stopping it without leaving a process behind.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, copyFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';

/** The path of `command` on the PATH (or in `extra` directories), or NS_ERR_NOT_INSTALLED saying what to install. */
export function findExecutable(command: string, debianPackage: string, extra: string[] = []): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extra]) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new NodescaleError(
    'NS_ERR_NOT_INSTALLED',
    `${command} is not installed: apt-get install ${debianPackage} (or give the URL of a running one)`,
  );
}

/** A port nothing listens on now, on 127.0.0.1 (another process may take it before us: small, accepted risk). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** True once a TCP connection to 127.0.0.1:port succeeds. */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    // A host behind a cut link never answers: a probe gives up on it and is tried again.
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Polls until the port accepts connections; rejects when `failed()` says why not, or at the deadline. */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  failed: () => string | null,
  host = '127.0.0.1',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(port, host)) return;
    const why = failed();
    if (why !== null) throw new NodescaleError('NS_ERR_SERVER_START', why);
    if (Date.now() > deadline)
      throw new NodescaleError(
        'NS_ERR_SERVER_START',
        `nothing accepted connections on port ${port} within ${timeoutMs / 1000} s`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) signal('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The uid and gid of a system user, or null when there is none. */
export function systemUser(name: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

/** A server's TLS files, PEM paths: its certificate and key, and the CA whose clients it accepts. */
export interface ServerTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** The files copied into the server's directory (0600: the server's user alone reads its key), by name. */
export function copyTlsFiles(files: ServerTlsFiles, dir: string): ServerTlsFiles {
  const copied = {
    ca: path.join(dir, 'tls-ca.pem'),
    cert: path.join(dir, 'tls-cert.pem'),
    key: path.join(dir, 'tls-key.pem'),
  };
  for (const name of ['ca', 'cert', 'key'] as const) {
    copyFileSync(files[name], copied[name]);
    chmodSync(copied[name], 0o600);
  }
  return copied;
}

/** A private server that a test or the demo started (servers/*.ts): where it listens, and its process. */
export interface PrivateServer {
  /** Its URL, with the random password it was given. */
  readonly url: string;
  readonly port: number;
  /** Its TLS URL when it was started with TLS files, else null. */
  readonly tlsUrl: string | null;
  /** Its own directory (data, configuration, log). */
  readonly dir: string;
  /** Its process, or null while stopped. */
  pid(): number | null;
  /** Starts it again after a stop that kept its directory. */
  start(): Promise<void>;
}

/** The server once its first `start()` succeeded; when it did not, stopped (nothing left running, its directory gone). */
export async function started<S extends { stop(): Promise<void> }>(server: S, start: () => Promise<void>): Promise<S> {
  try {
    await start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
