/**
 * A private RabbitMQ node, started from Debian's `rabbitmq-server` on free ports with a data directory of its own:
 * for the tests, the benches and `nodescale demo --scale-out`. Never the machine's own broker, never its data.
 *
 * As root, Debian's script runs the node as the `rabbitmq` user: the data directory is given to that user. As anyone
 * else, the node runs as that user, from /usr/lib/rabbitmq/bin, with its Erlang cookie in the data directory. It takes
 * several seconds to accept connections; `start()` polls the port. `stop()` sends the node SIGTERM (a clean shutdown,
 * about a second) and removes the directory; `stop({ keepData: true })` and `start()` again restart the same node on
 * the same port with its queues: a broker restart, for the tests that need one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chownSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { accepts, findExecutable, freePort, systemUser, terminate, waitForPort } from './process.ts';

export interface RabbitMqOptions {
  /** The AMQP port. Default: a free one. */
  port?: number;
  /** How long to wait for it to accept connections. Default 90 s (a busy machine). */
  startTimeoutMs?: number;
  /** More lines of rabbitmq.conf (`consumer_timeout = 5000`, say). */
  config?: string[];
}

export interface RabbitMqNode {
  /** amqp://guest:guest@127.0.0.1:<port> (guest may connect from loopback only). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** The broker's own process (beam.smp), or null while stopped. */
  pid(): number | null;
  /** Starts it again after stop({ keepData: true }). */
  start(): Promise<void>;
  /** Stops it; removes its data directory unless keepData. */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

const LIB_BIN = '/usr/lib/rabbitmq/bin';
const EPMD_PORT = 4369;

/** Debian's script as root (it drops to the `rabbitmq` user), the node's own start script otherwise. */
export function rabbitMqExecutable(): string {
  return process.getuid?.() === 0
    ? findExecutable('rabbitmq-server', 'rabbitmq-server', ['/usr/sbin'])
    : findExecutable('rabbitmq-server', 'rabbitmq-server', [LIB_BIN]);
}

/** Whether Erlang's port mapper (epmd, port 4369) runs: a node starts one if none does, and leaves it behind. */
export const epmdRunning = (): Promise<boolean> => accepts(EPMD_PORT);

/** Stops epmd unless an Erlang node still uses it (`epmd -kill` refuses then); for who started it. */
export function stopEpmd(): void {
  try {
    execFileSync('epmd', ['-kill'], { stdio: 'ignore' });
  } catch {
    // not installed, not running, or still in use: left alone
  }
}

export async function startRabbitMq(options: RabbitMqOptions = {}): Promise<RabbitMqNode> {
  const root = process.getuid?.() === 0;
  const script = rabbitMqExecutable();
  const port = options.port ?? (await freePort());
  const distPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-rabbitmq-'));
  const owner = root ? systemUser('rabbitmq') : null;
  for (const sub of ['mnesia', 'log']) mkdirSync(path.join(dir, sub));
  writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  // Loopback only; nothing else differs from a default node.
  writeFileSync(
    path.join(dir, 'rabbitmq.conf'),
    [`listeners.tcp.default = 127.0.0.1:${port}`, ...(options.config ?? [])].join('\n') + '\n',
  );
  if (owner !== null) {
    for (const entry of ['', 'mnesia', 'log', 'enabled_plugins', 'rabbitmq.conf'])
      chownSync(path.join(dir, entry), owner.uid, owner.gid);
    chmodSync(dir, 0o755);
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_NODENAME: `nodescale-${port}@localhost`,
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'rabbitmq.pid'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    ...(root ? {} : { HOME: dir }),
  };
  let child: ChildProcess | null = null;
  const pidFile = path.join(dir, 'rabbitmq.pid');
  const readPid = (): number | null => {
    if (!existsSync(pidFile)) return null;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  };
  const start = async () => {
    rmSync(pidFile, { force: true });
    const out = openSync(path.join(dir, 'console.log'), 'a');
    child = spawn(script, [], { env, stdio: ['ignore', out, out], detached: true });
    child.unref();
    let exited: string | null = null;
    child.once(
      'exit',
      (code, signal) =>
        (exited = `rabbitmq-server exited (${signal ?? `code ${code}`}) before it accepted connections; its logs are in ${dir}`),
    );
    await waitForPort(port, options.startTimeoutMs ?? 90_000, () => exited);
  };
  const node: RabbitMqNode = {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    dir,
    pid: readPid,
    start,
    async stop({ keepData = false } = {}) {
      const pid = readPid();
      if (pid !== null) await terminate(pid, 15_000);
      // The wrappers (su, sh) end with it; a node that never wrote its pid file is stopped through them.
      if (child?.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      child = null;
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start();
  } catch (error) {
    await node.stop();
    throw error;
  }
  return node;
}
