/**
 * A private Redis Sentinel (Debian's `redis-sentinel`), watching one master: for the tests of the store's failover
 * and the fleet lab. Its configuration file is its own (Sentinel rewrites it as it learns the replicas and the other
 * sentinels, and after a failover), 0600, in a directory of its own that stop() removes. It requires the same
 * password as the servers it watches, and gives it to them and to the other sentinels.
 *
 * The timings are the lab's, not Sentinel's production defaults: a master that does not answer for `downAfterMs`
 * (default 2 s; Sentinel's own default is 30 s) is down for this sentinel, and down for all once `quorum` agree; then
 * one of them, elected by a majority of the sentinels, promotes a replica.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';
import type { Namespace } from './netns.ts';
import { findExecutable, freePort, started, terminate, waitForPort, type PrivateServer } from './process.ts';

export interface SentinelOptions {
  /** The name the master is watched by (a client's redis-sentinel://…#name). */
  masterName: string;
  master: { host: string; port: number };
  /** The servers' password, which this sentinel requires too. */
  password: string;
  /** How many sentinels must agree the master is down. Default 2. */
  quorum?: number;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  port?: number;
  bind?: string;
  namespace?: Namespace;
  startTimeoutMs?: number;
  /**
   * The master given by host name, and the servers named so to clients (`resolve-hostnames`, `announce-hostnames`):
   * each client resolves the name itself (the lab's hosts of another region reach the master through its relay).
   */
  hostnames?: boolean;
}

export interface SentinelServer extends PrivateServer {
  stop(): Promise<void>;
}

export async function startSentinel(options: SentinelOptions): Promise<SentinelServer> {
  const executable = findExecutable('redis-sentinel', 'redis-sentinel', ['/usr/bin']);
  const port = options.port ?? (await freePort());
  const bind = options.bind ?? '127.0.0.1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-sentinel-'));
  const config = path.join(dir, 'sentinel.conf');
  const name = options.masterName;
  writeFileSync(
    config,
    [
      `port ${port}`,
      `bind ${bind}`,
      `dir ${dir}`,
      `requirepass ${options.password}`,
      // To the other sentinels: they require the password too.
      `sentinel sentinel-pass ${options.password}`,
      ...(options.hostnames === true ? ['sentinel resolve-hostnames yes', 'sentinel announce-hostnames yes'] : []),
      `sentinel monitor ${name} ${options.master.host} ${options.master.port} ${options.quorum ?? 2}`,
      `sentinel auth-pass ${name} ${options.password}`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 2_000}`,
      `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 10_000}`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  let child: ChildProcess | null = null;
  const start = async () => {
    const out = openSync(path.join(dir, 'sentinel.log'), 'a');
    const argv = [executable, config];
    const inNamespace =
      options.namespace === undefined ? argv : ['ip', 'netns', 'exec', options.namespace.name, ...argv];
    const spawned = spawn(inNamespace[0]!, inNamespace.slice(1), { stdio: ['ignore', out, out] });
    closeSync(out);
    child = spawned;
    let exited: string | null = null;
    spawned.once('exit', (code, signal) => {
      exited = `redis-sentinel exited (${signal ?? `code ${code}`}) before it accepted connections; its log is in ${dir}`;
      if (child === spawned) child = null;
    });
    await waitForPort(port, options.startTimeoutMs ?? 30_000, () => exited, bind);
  };
  const server: SentinelServer = {
    url: `redis://:${options.password}@${bind}:${port}`,
    port,
    tlsUrl: null,
    dir,
    pid: () => child?.pid ?? null,
    start,
    async stop() {
      const pid = child?.pid;
      child = null;
      if (pid !== undefined) await terminate(pid, 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return started(server, start);
}

/**
 * The sentinels of a master as a store is given them: redis-sentinel://:password@host:port,…/0#name (the password
 * percent-encoded).
 */
export function sentinelStoreUrl(sentinels: readonly SentinelServer[], masterName: string, password: string): string {
  const hosts = sentinels.map((sentinel) => new URL(sentinel.url).host).join(',');
  return `redis-sentinel://:${encodeURIComponent(password)}@${hosts}/0#${masterName}`;
}

/**
 * Waits until every sentinel knows the master's `replicas` replicas and the other sentinels: until then a failover
 * may find no replica to promote, or no majority to elect. NS_ERR_SERVER_START past `timeoutMs`.
 */
export async function sentinelsSettled(
  sentinels: readonly SentinelServer[],
  masterName: string,
  replicas: number,
  timeoutMs = 30_000,
): Promise<void> {
  const { createClient } = await import('@redis/client');
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    let settled = true;
    for (const sentinel of sentinels) {
      const client = createClient({ url: sentinel.url, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
      client.on('error', () => {});
      try {
        await client.connect();
        const info = await client.sendCommand<string[]>(['SENTINEL', 'MASTER', masterName]);
        const field = (name: string) => Number(info[info.indexOf(name) + 1]);
        last = `${new URL(sentinel.url).host} sees ${field('num-slaves')} replicas, ${field('num-other-sentinels')} other sentinels`;
        if (field('num-slaves') !== replicas || field('num-other-sentinels') !== sentinels.length - 1) settled = false;
      } catch (error) {
        last = `${new URL(sentinel.url).host}: ${(error as Error).message}`;
        settled = false;
      } finally {
        if (client.isOpen) client.destroy();
      }
      if (!settled) break;
    }
    if (settled) return;
    if (Date.now() > deadline)
      throw new NodescaleError('NS_ERR_SERVER_START', `the sentinels did not settle within ${timeoutMs} ms: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
