/**
 * A private RabbitMQ node, started from Debian's `rabbitmq-server` on free ports with a data directory of its own:
 * for the tests, the benches and `nodescale demo --scale-out`. Never the machine's own broker, never its data.
 *
 * As root, Debian's script runs the node as the `rabbitmq` user: the data directory is given to that user. As anyone
 * else, the node runs as that user, from /usr/lib/rabbitmq/bin, with its Erlang cookie in the data directory. It takes
 * several seconds to accept connections; `start()` polls the port. `stop()` sends the node SIGTERM (a clean shutdown,
 * about a second) and removes the directory; `stop({ keepData: true })` and `start()` again restart the same node on
 * the same port with its queues: a broker restart, for the tests that need one.
 *
 * Private to this machine's other users too: AMQP, Erlang distribution and epmd listen on loopback only; the data
 * directory (queues, messages: page URLs) is 0700; no `guest`, but a user with a random password, which is in the
 * URL and in the 0700 directory's rabbitmq.conf, never on a command line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  chmodSync,
  closeSync,
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
import {
  accepts,
  copyTlsFiles,
  findExecutable,
  freePort,
  systemUser,
  terminate,
  waitForPort,
  started,
} from './process.ts';
import { NodescaleError } from '../errors.ts';
import type { Namespace } from './netns.ts';
import type { PrivateServer, ServerTlsFiles } from './process.ts';

export interface RabbitMqOptions {
  /** The AMQP port. Default: a free one. */
  port?: number;
  /** How long to wait for it to accept connections. Default 90 s (a busy machine). */
  startTimeoutMs?: number;
  /** More lines of rabbitmq.conf (`consumer_timeout = 5000`, say). */
  config?: string[];
  /**
   * An AMQPS listener too, on these files (PEM paths, copied into its directory): its certificate and key, and the CA
   * that signs the clients' certificates, which it requires (verify_peer, fail_if_no_peer_cert).
   */
  tls?: ServerTlsFiles;
  /**
   * The fleet lab: run the node inside this network namespace, listening on `address` (its host's), named
   * `nodeName` (rabbit@broker1: the host name resolves through the namespace's /etc/hosts), and form a cluster
   * with `peers` (node names, this one included) by classic peer discovery. Root only (the nodes share the Erlang
   * cookie of Debian's rabbitmq user).
   */
  lab?: { namespace: Namespace; address: string; nodeName: string; peers: string[]; password: string };
}

/**
 * `url`: amqp://nodescale:<random password>@127.0.0.1:<port>; `tlsUrl` with `tls`: amqps://…@127.0.0.1:<TLS port>;
 * `pid()`: the broker's own process (beam.smp). `start()` again after stop({ keepData: true }).
 */
export interface RabbitMqNode extends PrivateServer {
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
  const lab = options.lab ?? null;
  if (lab !== null && !root)
    throw new NodescaleError('NS_ERR_LAB', 'a RabbitMQ node in the lab runs as root (its cluster shares one cookie)');
  const address = lab?.address ?? '127.0.0.1';
  const script = rabbitMqExecutable();
  const port = options.port ?? (await freePort());
  const distPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-rabbitmq-'));
  const owner = root ? systemUser('rabbitmq') : null;
  for (const sub of ['mnesia', 'log']) mkdirSync(path.join(dir, sub));
  writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  // Loopback only, and a user of its own with a random password (the default user is made at first boot, instead of
  // guest); nothing else differs from a default node.
  // A cluster's nodes share their users: every node of a lab cluster is given the same password.
  const password = lab?.password ?? randomBytes(18).toString('base64url');
  const tlsPort = options.tls === undefined ? null : await freePort();
  const tls = options.tls === undefined ? null : copyTlsFiles(options.tls, dir);
  writeFileSync(
    path.join(dir, 'rabbitmq.conf'),
    [
      `listeners.tcp.default = ${address}:${port}`,
      'default_user = nodescale',
      `default_pass = ${password}`,
      ...(tls === null
        ? []
        : [
            `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
            `ssl_options.cacertfile = ${tls.ca}`,
            `ssl_options.certfile = ${tls.cert}`,
            `ssl_options.keyfile = ${tls.key}`,
            'ssl_options.verify = verify_peer',
            'ssl_options.fail_if_no_peer_cert = true',
          ]),
      ...(lab === null
        ? []
        : [
            'cluster_formation.peer_discovery_backend = classic_config',
            ...lab.peers.map((peer, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${peer}`),
          ]),
      ...(options.config ?? []),
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  if (owner !== null) {
    for (const entry of [
      '',
      'mnesia',
      'log',
      'enabled_plugins',
      'rabbitmq.conf',
      ...(tls ? Object.values(tls).map((file) => path.basename(file)) : []),
    ])
      chownSync(path.join(dir, entry), owner.uid, owner.gid);
    chmodSync(dir, 0o700);
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_NODE_IP_ADDRESS: address,
    RABBITMQ_DIST_PORT: String(distPort),
    // Erlang distribution and the port mapper on loopback: by default both listen on every address. In the lab, on
    // the namespace's own addresses (its loopback and its host's), which is what the other nodes need.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `-kernel inet_dist_use_interface {${address.replaceAll('.', ',')}}`,
    ERL_EPMD_ADDRESS: lab === null ? '127.0.0.1' : `127.0.0.1,${address}`,
    RABBITMQ_NODENAME: lab?.nodeName ?? `nodescale-${port}@localhost`,
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
    child =
      lab === null
        ? spawn(script, [], { env, stdio: ['ignore', out, out], detached: true })
        : spawn('ip', ['netns', 'exec', lab.namespace.name, script], {
            env,
            stdio: ['ignore', out, out],
            detached: true,
          });
    // The child has its own copy of the log's descriptor: ours would leak, one per start.
    closeSync(out);
    child.unref();
    let exited: string | null = null;
    child.once(
      'exit',
      (code, signal) =>
        (exited = `rabbitmq-server exited (${signal ?? `code ${code}`}) before it accepted connections; its logs are in ${dir}`),
    );
    await waitForPort(port, options.startTimeoutMs ?? 90_000, () => exited, address);
    if (tlsPort !== null) await waitForPort(tlsPort, options.startTimeoutMs ?? 90_000, () => exited, address);
  };
  const node: RabbitMqNode = {
    url: `amqp://nodescale:${password}@${address}:${port}`,
    port,
    tlsUrl: tlsPort === null ? null : `amqps://nodescale:${password}@${address}:${tlsPort}`,
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
  return started(node, start);
}
