/**
 * A private nginx or haproxy (Debian's), started on a configuration the caller gives (`nodescale deploy`'s, in the
 * tests), in a directory of its own for its pid and logs, in the foreground: `nginx -p DIR -c FILE -g 'daemon off;'`,
 * `haproxy -f FILE -db`. check() runs the server's own check of a configuration (`nginx -t`, `haproxy -c`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findExecutable, terminate, waitForPort } from './process.ts';

export type BalancerKind = 'nginx' | 'haproxy';

export interface Balancer {
  readonly kind: BalancerKind;
  readonly dir: string;
  pid(): number | null;
  /** What the server has logged so far (nginx: its error log, at level warn; haproxy: its output in -db mode). */
  log(): string;
  stop(): Promise<void>;
}

const executable = (kind: BalancerKind) => findExecutable(kind, kind, ['/usr/sbin']);

/**
 * nginx's main-context directives of our own: the pid file and the error log in the private directory, at level warn
 * (an upstream server marked down is a warning: "upstream server temporarily disabled").
 */
const nginxGlobals = (dir: string) =>
  `pid ${path.join(dir, 'nginx.pid')}; error_log ${path.join(dir, 'error.log')} warn;`;

function argv(kind: BalancerKind, dir: string, file: string, check: boolean): string[] {
  if (kind === 'nginx')
    return [
      ...(check ? ['-t'] : []),
      '-p',
      dir,
      '-c',
      file,
      '-g',
      `${check ? '' : 'daemon off; '}${nginxGlobals(dir)}`,
    ];
  return [check ? '-c' : '-db', '-f', file];
}

/** The server's own verdict on a configuration: ok, and what it said. */
export function checkBalancerConfig(kind: BalancerKind, config: string): { ok: boolean; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `nodescale-${kind}-`));
  try {
    const file = path.join(dir, kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
    writeFileSync(file, config);
    const ran = spawnSync(executable(kind), argv(kind, dir, file, true), { encoding: 'utf8' });
    return { ok: ran.status === 0, output: `${ran.stdout}${ran.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts it on `config` and resolves once it accepts connections on `port` (the one its configuration listens on). */
export async function startBalancer(kind: BalancerKind, config: string, port: number): Promise<Balancer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `nodescale-${kind}-`));
  const file = path.join(dir, kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
  writeFileSync(file, config);
  const log = path.join(dir, 'output.log');
  const out = openSync(log, 'a');
  const child: ChildProcess = spawn(executable(kind), argv(kind, dir, file, false), { stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `${kind} exited (${signal ?? code}): ${readFileSync(log, 'utf8')}`));
  const balancer: Balancer = {
    kind,
    dir,
    pid: () => (exited === null ? (child.pid ?? null) : null),
    log: () => [log, path.join(dir, 'error.log')].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join(''),
    async stop() {
      if (exited === null && child.pid !== undefined) await terminate(child.pid, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitForPort(port, 10_000, () => exited);
  } catch (error) {
    await balancer.stop();
    throw error;
  }
  return balancer;
}
