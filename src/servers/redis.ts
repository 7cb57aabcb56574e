/**
 * A private Redis, started from Debian's `redis-server` on a free loopback port with a directory of its own and no
 * persistence (`--save ''`, no append-only file): for the tests, the benches and `nodescale demo --scale-out`. Never
 * the machine's own Redis, never its data. It requires a random password (in a 0600 config file, never on its command
 * line, which every local user can read): another user of the machine cannot write a cache entry the API would serve. `stop()` sends SIGTERM and removes the directory; `stop()` then `start()`
 * restarts the same server on the same port (empty: nothing is persisted), for the tests that need Redis to go away.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { copyTlsFiles, findExecutable, freePort, terminate, waitForPort, started } from './process.ts';
import type { PrivateServer, ServerTlsFiles } from './process.ts';
import type { Namespace } from './netns.ts';

export interface RedisOptions {
  /** Default: a free one. */
  port?: number;
  /** How long to wait for it to accept connections. Default 30 s. */
  startTimeoutMs?: number;
  /** More arguments of redis-server (`--requirepass`, say: then it is that password, and the URL has none). */
  args?: string[];
  /** The password it requires: default a random one; null: none. */
  password?: string | null;
  /**
   * A TLS port too, on these files (PEM paths, copied into its directory): its certificate and key, and the CA that
   * signs the clients' certificates, which it requires (Redis's default `tls-auth-clients yes`).
   */
  tls?: ServerTlsFiles;
  /** Listen here instead of 127.0.0.1 (the lab: the host's address), inside this namespace when one is given. */
  bind?: string;
  namespace?: Namespace;
  /** A replica of this master (its password is the same: `masterauth`). */
  replicaOf?: { host: string; port: number };
  /** The name it gives of itself as a replica (`replica-announce-ip`): Sentinel then names it so to clients. */
  announce?: string;
}

/**
 * `url`: redis://:<password>@127.0.0.1:<port> (redis://127.0.0.1:<port> without a password); `tlsUrl` with `tls`:
 * rediss://…@127.0.0.1:<TLS port>. `start()` again after stop({ keepDir: true }).
 */
export interface RedisServer extends PrivateServer {
  /** Stops it; removes its directory unless keepDir. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export const redisExecutable = (): string => findExecutable('redis-server', 'redis-server');

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const executable = redisExecutable();
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-redis-'));
  const explicit = options.args?.includes('--requirepass') ?? false;
  const password = explicit
    ? null
    : options.password === undefined
      ? randomBytes(18).toString('base64url')
      : options.password;
  const config = path.join(dir, 'redis.conf');
  const tlsPort = options.tls === undefined ? null : await freePort();
  const tlsLines =
    options.tls === undefined
      ? []
      : [
          `tls-port ${tlsPort}`,
          ...Object.entries(copyTlsFiles(options.tls, dir)).map(
            ([file, at]) => `tls-${{ ca: 'ca-cert', cert: 'cert', key: 'key' }[file]}-file ${at}`,
          ),
        ];
  const bind = options.bind ?? '127.0.0.1';
  const replicaLines =
    options.replicaOf === undefined
      ? []
      : [
          `replicaof ${options.replicaOf.host} ${options.replicaOf.port}`,
          ...(password === null ? [] : [`masterauth ${password}`]),
        ];
  if (options.announce !== undefined) replicaLines.push(`replica-announce-ip ${options.announce}`);
  writeFileSync(
    config,
    [...(password === null ? [] : [`requirepass ${password}`]), ...tlsLines, ...replicaLines, ''].join('\n'),
    { mode: 0o600 },
  );
  let child: ChildProcess | null = null;
  const start = async () => {
    const out = openSync(path.join(dir, 'redis.log'), 'a');
    const argv = [
      executable,
      config,
      ...['--port', String(port), '--bind', bind, '--save', '', '--appendonly', 'no', '--dir', dir],
      ...(options.args ?? []),
    ];
    // `ip netns exec` execs the server: the child's pid is redis-server's.
    const inNamespace =
      options.namespace === undefined ? argv : ['ip', 'netns', 'exec', options.namespace.name, ...argv];
    const started = spawn(inNamespace[0]!, inNamespace.slice(1), { stdio: ['ignore', out, out] });
    // The child has its own copy of the log's descriptor: ours would leak, one per start.
    closeSync(out);
    child = started;
    let exited: string | null = null;
    started.once('exit', (code, signal) => {
      exited = `redis-server exited (${signal ?? `code ${code}`}) before it accepted connections; its log is in ${dir}`;
      if (child === started) child = null;
    });
    await waitForPort(port, options.startTimeoutMs ?? 30_000, () => exited, bind);
    if (tlsPort !== null) await waitForPort(tlsPort, options.startTimeoutMs ?? 30_000, () => exited);
  };
  const auth = password === null ? '' : `:${password}@`;
  const server: RedisServer = {
    url: `redis://${auth}${bind}:${port}`,
    port,
    tlsUrl: tlsPort === null ? null : `rediss://${auth}127.0.0.1:${tlsPort}`,
    dir,
    pid: () => child?.pid ?? null,
    start,
    async stop({ keepDir = false } = {}) {
      const pid = child?.pid;
      child = null;
      if (pid !== undefined) await terminate(pid, 5_000);
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return started(server, start);
}
