/**
 * Helpers for bench/: run a command and measure the CPU it used (user + system, from the shell's `times`, the same
 * way for every tool), start a hello server in its own process, and make sure the tools we compare with are present.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { listenForAnnouncements } from '../src/ipc.ts';

export const BENCH_DIR = path.dirname(new URL(import.meta.url).pathname);
export const ROOT = path.dirname(BENCH_DIR);
export const NODESCALE = path.join(ROOT, 'bin', 'nodescale.js');

export interface Measured {
  stdout: string;
  /** CPU time of the command and its children, ms. */
  cpuMs: number;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `argv` under bash and reads its CPU time from `times` (children's user and system time). */
export function measure(argv: string[]): Promise<Measured> {
  const script = `${argv.map(quote).join(' ')} > "$NS_OUT"; status=$?; times; exit $status`;
  const out = path.join(BENCH_DIR, 'results', `.out-${process.pid}`);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      env: { ...process.env, NS_OUT: out },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let times = '';
    child.stdout.on('data', (chunk) => (times += chunk));
    child.on('exit', async (code) => {
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited with ${code}`));
      const { readFileSync, rmSync } = await import('node:fs');
      const stdout = readFileSync(out, 'utf8');
      rmSync(out);
      // `times` prints two lines: the shell's own times, then its children's: "0m1.234s 0m0.567s".
      const children = times.trim().split('\n').at(-1)!;
      const [user, system] = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(
        (m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000,
      );
      resolve({ stdout, cpuMs: user! + system! });
    });
  });
}

export interface Server {
  url: string;
  pid: number;
  stop(): void;
}

/** User + system CPU of a process so far, ms (Linux /proc; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ": state is field 0, utime field 11, stime field 12.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** On a machine with two cores or more, servers run pinned to the last core (taskset), the generator elsewhere. */
const PIN =
  which('taskset') !== null && availableParallelism() >= 2 ? ['taskset', '-c', String(availableParallelism() - 1)] : [];

/**
 * Pins this process, the load generator, to the cores the servers do not use, until the returned function restores
 * it. Unpinned, the scheduler now and then runs the generator on the servers' core: on a 2-core machine that biases
 * a side-by-side comparison by several % (two identical servers read 0.95).
 */
export function pinGenerator(): () => void {
  if (PIN.length === 0) return () => {};
  const pid = String(process.pid);
  const before = execFileSync('taskset', ['-pc', pid], { encoding: 'utf8' }).split(':').at(-1)!.trim();
  execFileSync('taskset', ['-a', '-pc', `0-${availableParallelism() - 2}`, pid], { stdio: 'ignore' });
  return () => execFileSync('taskset', ['-a', '-pc', before, pid], { stdio: 'ignore' });
}

/** `nodescale hello <kind>` on a free port; `flags` such as --protect. */
export function startHello(kind: string, flags: string[] = []): Promise<Server> {
  return startNodescaleService([NODESCALE, 'hello', kind, '--port', '0', ...flags], 'hello').then(({ child, url }) => ({
    url,
    pid: child.pid!,
    stop: () => child.kill('SIGKILL'),
  }));
}

/** Starts `node <args>` and waits for its "listening <url>" line. */
export async function startServer(args: string[]): Promise<Server> {
  const { child, match } = await startProcess(args, /listening (?:on )?(\S+)/);
  return { url: match[1]!, pid: child.pid!, stop: () => child.kill('SIGKILL') };
}

/**
 * Starts a nodescale command that announces where it listens (src/ipc.ts: a JSON line to the socket
 * NODESCALE_ANNOUNCE names), and waits for the announcement of `service`.
 */
export async function startNodescaleService(
  args: string[],
  service: string,
  { pin = true } = {},
): Promise<Started & { url: string }> {
  let announced!: (url: string) => void;
  const url = new Promise<string>((resolve) => (announced = resolve));
  const listener = await listenForAnnouncements((a) => a.service === service && announced(a.url));
  try {
    const started = await startProcess(args, url, { pin, env: listener.env });
    return { ...started, url: await url };
  } finally {
    listener.close();
  }
}

export interface Started {
  child: ChildProcess;
  /** The match of `ready` in its output (empty when it was an announcement). */
  match: RegExpExecArray | string[];
  /** SIGTERM, and resolves once it exited. */
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` (pinned to the servers' core unless `pin` is false) and waits until its output (stdout and
 * stderr together) matches `ready`, or until `ready` resolves.
 */
export function startProcess(
  args: string[],
  ready: RegExp | Promise<unknown>,
  { pin = true, env = {} as Record<string, string> } = {},
): Promise<Started> {
  const [command, ...rest] = [...(pin ? PIN : []), process.execPath, ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk;
      const match = ready instanceof RegExp ? ready.exec(seen) : null;
      if (match) resolve({ child, match, stop });
    };
    if (!(ready instanceof RegExp)) void ready.then(() => resolve({ child, match: [], stop }));
    child.stdout!.on('data', onData);
    // Its errors still reach the terminal.
    child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      onData(chunk);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${seen.slice(-500)}`)));
  });
}

export function which(command: string): string | null {
  try {
    return execFileSync('bash', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** The tools we compare with (autocannon, pm2) live in bench/node_modules only: installed on first use. */
export function installBenchTools(): boolean {
  const bins = [
    ...['autocannon', 'pm2'].map((tool) => path.join(BENCH_DIR, 'node_modules', '.bin', tool)),
    ...['@cloudamqp/amqp-client', 'rabbitmq-client', 'nats', 'ioredis'].map((pkg) =>
      path.join(BENCH_DIR, 'node_modules', pkg, 'package.json'),
    ),
  ];
  if (!bins.every((bin) => existsSync(bin))) {
    try {
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefix', BENCH_DIR], { stdio: 'inherit' });
    } catch {
      return false;
    }
  }
  return bins.every((bin) => existsSync(bin));
}

export function autocannonBin(): string | null {
  installBenchTools();
  const bin = path.join(BENCH_DIR, 'node_modules', '.bin', 'autocannon');
  return existsSync(bin) ? bin : null;
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
