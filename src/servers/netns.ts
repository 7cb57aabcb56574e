/**
 * A network namespace made for a test or a benchmark (`ip netns`, root only): its own loopback and its own
 * per-namespace sysctls (net.core.somaxconn among them), commands run and processes started inside it, and all of it
 * removed by remove(), which kills what was started there first. The fleet lab (issue 27) builds on it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Namespace {
  readonly name: string;
  /**
   * Gives the processes run in it their own copy of a file of /etc (hosts, resolv.conf): `ip netns exec` mounts
   * /etc/netns/<name>/<file> over /etc/<file>. Removed with the namespace.
   */
  etcFile(file: 'hosts' | 'resolv.conf', text: string): void;
  /** Runs a command inside it to its end: exit code and output (never throws for a non-zero exit). */
  exec(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts a long-running process inside it (with this environment, default ours); remove() kills it if it runs. */
  spawn(args: string[], options?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  sysctl(key: string, value: string | number): void;
  /** Kills what spawn() started and deletes the namespace. */
  remove(): Promise<void>;
}

/** Whether this process may make namespaces (root, and `ip netns` permitted): the reason when not. */
export function namespacesUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return null;
  } catch (error) {
    return `ip netns is not permitted here: ${(error as Error).message}`;
  }
}

export function createNamespace(name: string): Namespace {
  execFileSync('ip', ['netns', 'add', name]);
  const children = new Set<ChildProcess>();
  const ns: Namespace = {
    name,
    exec: (args, timeoutMs = 60_000) =>
      new Promise((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', name, ...args],
          { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) =>
            resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
        );
      }),
    spawn(args, options = {}) {
      const child = spawn('ip', ['netns', 'exec', name, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: options.env ?? process.env,
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    etcFile(file, text) {
      const dir = path.join('/etc/netns', name);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      writeFileSync(path.join(dir, file), text, { mode: 0o644 });
    },
    sysctl: (key, value) => execFileSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', `${key}=${value}`]),
    async remove() {
      // `ip netns exec` execs the command: the child's pid is the process inside the namespace.
      await Promise.all(
        [...children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGKILL');
            }),
        ),
      );
      // Daemons that left their starter (a broker's beam.smp, epmd) are still inside: every process in it goes.
      await killEveryProcessIn(name);
      execFileSync('ip', ['netns', 'del', name]);
      rmSync(path.join('/etc/netns', name), { recursive: true, force: true });
    },
  };
  try {
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (error) {
    execFileSync('ip', ['netns', 'del', name]);
    throw error;
  }
  return ns;
}

/** SIGKILLs every process inside the namespace (`ip netns pids`), and waits until none is left (up to 5 s). */
export async function killEveryProcessIn(name: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    let pids: number[];
    try {
      pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
        .split('\n')
        .map(Number)
        .filter((pid) => Number.isInteger(pid) && pid > 0);
    } catch {
      return;
    }
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The processes inside the namespace (`ip netns pids`); none when it is gone. */
export function pidsIn(name: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

/** Sends `signal` to every process inside the namespace (SIGSTOP freezes a host, SIGCONT thaws it). */
export function signalEveryProcessIn(name: string, signal: NodeJS.Signals): void {
  for (const pid of pidsIn(name)) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
}
