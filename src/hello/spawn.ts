/**
 * Starts a hello server in a child process of its own, so that it never shares an event loop (or a core's time
 * slices) with the load generator measuring it.
 */
import { spawn } from 'node:child_process';
import { NodescaleError } from '../errors.ts';
import { listenForAnnouncements } from '../ipc.ts';
import type { HelloKind } from './index.ts';

export interface SpawnedServer {
  kind: HelloKind;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const BIN = new URL('../../bin/nodescale.js', import.meta.url);
const START_TIMEOUT_MS = 15_000;

export async function spawnHello(
  kind: HelloKind,
  options: { host?: string; port?: number; tls?: { certFile: string; keyFile: string } } = {},
): Promise<SpawnedServer> {
  const args = [
    BIN.pathname,
    'hello',
    kind,
    '--port',
    String(options.port ?? 0),
    '--host',
    options.host ?? '127.0.0.1',
    ...(options.tls === undefined ? [] : ['--tls-cert', options.tls.certFile, '--tls-key', options.tls.keyFile]),
  ];
  // The child says where it listens on a socket of ours (ipc.ts), not in a log line.
  let announced!: (url: string) => void;
  const url = new Promise<string>((resolve) => (announced = resolve));
  const listener = await listenForAnnouncements((announcement) => announced(announcement.url));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...listener.env },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };
  try {
    return await new Promise<SpawnedServer>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        void stop();
        const detail = stderr ? `: ${stderr.trim()}` : '';
        reject(new NodescaleError('NS_ERR_SERVER_START', `the ${kind} hello server ${why}${detail}`));
      };
      const timer = setTimeout(
        () => fail(`did not report its address within ${START_TIMEOUT_MS / 1000}s`),
        START_TIMEOUT_MS,
      );
      void url.then((address) => {
        clearTimeout(timer);
        resolve({ kind, url: address, pid: child.pid!, stop });
      });
      child.once('exit', (code, signal) => fail(`exited (${signal ?? `code ${code}`}) before listening`));
      child.once('error', (error) => fail(`could not be started (${error.message})`));
    });
  } finally {
    listener.close();
  }
}
