/**
 * The lab's shared store: Redis with replication and automatic failover. One redis-server on each given host, the
 * first the master and the others its replicas, and a sentinel beside each (three hosts: three sentinels, quorum 2,
 * so that one host lost still leaves a majority to elect). The store is given the sentinels, never the master
 * (redis-sentinel://…#lab), and follows a failover by itself (src/tagger/redis-sentinel.ts).
 */
import { randomBytes } from 'node:crypto';
import { startRedis, type RedisServer } from '../servers/redis.ts';
import { sentinelsSettled, sentinelStoreUrl, startSentinel, type SentinelServer } from '../servers/redis-sentinel.ts';
import type { LabHost } from './network.ts';

export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
export const MASTER_NAME = 'lab';

export interface RedisGroup {
  /** One per host, in order: the master first (until a failover). */
  readonly servers: readonly { host: LabHost; redis: RedisServer; sentinel: SentinelServer }[];
  /** What a store is given: the sentinels' addresses and the master's name. */
  readonly storeUrl: string;
  readonly password: string;
  stop(): Promise<void>;
}

/**
 * `byName`: the servers and sentinels know each other, and tell clients, by host name (each resolves it itself: the
 * fleet's hosts of another region reach the shared tier through their relay); the store is given the sentinels'
 * names too. Otherwise by address.
 */
export async function startRedisGroup(
  hosts: readonly LabHost[],
  options: { downAfterMs?: number; byName?: boolean } = {},
): Promise<RedisGroup> {
  const password = randomBytes(18).toString('base64url');
  const [first, ...rest] = hosts;
  if (first === undefined) throw new Error('startRedisGroup: no host');
  const servers: { host: LabHost; redis: RedisServer; sentinel: SentinelServer }[] = [];
  // Everything started so far, stopped if a later start fails: nothing is left running.
  const started: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    await Promise.all(started.map((server) => server.stop()));
  };
  const byName = options.byName === true;
  const master = { host: byName ? first.name : first.address, port: REDIS_PORT };
  try {
    const redis: RedisServer[] = [];
    for (const [i, host] of [first, ...rest].entries()) {
      const server = await startRedis({
        port: REDIS_PORT,
        password,
        bind: host.address,
        namespace: host.ns,
        ...(i === 0 ? {} : { replicaOf: master }),
        ...(byName ? { announce: host.name } : {}),
      });
      started.push(server);
      redis.push(server);
    }
    for (const [i, host] of hosts.entries()) {
      const sentinel = await startSentinel({
        port: SENTINEL_PORT,
        bind: host.address,
        namespace: host.ns,
        masterName: MASTER_NAME,
        master,
        password,
        hostnames: byName,
        quorum: Math.floor(hosts.length / 2) + 1,
        ...(options.downAfterMs === undefined ? {} : { downAfterMs: options.downAfterMs }),
      });
      started.unshift(sentinel); // stopped before the servers
      servers.push({ host, redis: redis[i]!, sentinel });
    }
    await sentinelsSettled(
      servers.map(({ sentinel }) => sentinel),
      MASTER_NAME,
      hosts.length - 1,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    servers,
    storeUrl: byName
      ? `redis-sentinel://:${encodeURIComponent(password)}@${servers.map(({ host }) => `${host.name}:${SENTINEL_PORT}`).join(',')}/0#${MASTER_NAME}`
      : sentinelStoreUrl(
          servers.map(({ sentinel }) => sentinel),
          MASTER_NAME,
          password,
        ),
    password,
    stop,
  };
}
