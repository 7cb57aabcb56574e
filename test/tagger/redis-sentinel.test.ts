/**
 * The Redis store behind Sentinel, against real servers on loopback: a master, two replicas and three sentinels
 * (Debian's redis-server and redis-sentinel). The master is killed under load: the store follows Sentinel's new
 * master by itself; reads fail only during the switch, with NS_ERR_STORE_UNAVAILABLE; what a replica had before the
 * failover is still there. And what a sentinel answers is untrusted input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '@redis/client';
import { startRedis, type RedisServer } from '../../src/servers/redis.ts';
import {
  sentinelsSettled,
  sentinelStoreUrl,
  startSentinel,
  type SentinelServer,
} from '../../src/servers/redis-sentinel.ts';
import { masterAddress, parseSentinelUrl } from '../../src/tagger/redis-sentinel.ts';
import { checkStore } from '../../src/tagger/store.ts';
import { openStore } from '../../src/tagger/tagger.ts';
import type { TagStore } from '../../src/tagger/store.ts';
import { waitUntil } from '../helpers/wait.ts';

test('redis-sentinel:// URLs: sentinels, credentials, database and master name; anything else refused with a code', () => {
  assert.deepEqual(parseSentinelUrl('redis-sentinel://:p%40ss@10.0.0.1:26379,s2,[::1]:26380/2#main'), {
    sentinels: [
      { host: '10.0.0.1', port: 26379 },
      { host: 's2', port: 26379 },
      { host: '::1', port: 26380 },
    ],
    masterName: 'main',
    username: undefined,
    password: 'p@ss',
    db: 2,
  });
  assert.equal(parseSentinelUrl('redis-sentinel://app:x@s1#m').username, 'app');
  for (const bad of [
    'redis-sentinel://s1:26379',
    'redis-sentinel://s1:26379#',
    'redis-sentinel://s1:99999#m',
    'redis-sentinel://s1 x:26379#m',
    'redis-sentinel://s1/abc#m',
    'redis-sentinel://:secret@s1,#m',
  ])
    assert.throws(
      () => checkStore(bad),
      (error: Error & { code?: string }) =>
        error.code === 'NS_ERR_INVALID_OPTION' &&
        /redis-sentinel:\/\//.test(error.message) &&
        !/secret/.test(error.message),
      bad,
    );
  // A sentinel's reply: the master's host and port, else nothing is followed.
  assert.deepEqual(masterAddress(['10.1.2.3', '6380']), { host: '10.1.2.3', port: 6380 });
  for (const hostile of [null, [], ['h'], ['h', '0'], ['h', '70000'], ['h', '63 79'], ['a b', '6379'], [1, 2], 'h:1'])
    assert.equal(masterAddress(hostile), null, JSON.stringify(hostile));
});

test(
  'the master killed under load: the store follows Sentinel to the new master; reads fail only during the switch, with NS_ERR_STORE_UNAVAILABLE',
  { timeout: 120_000 },
  async (t) => {
    const password = 'sentinel-test-password';
    const servers: RedisServer[] = [];
    const sentinels: SentinelServer[] = [];
    const made: { store?: TagStore } = {};
    let running = true;
    t.after(async () => {
      running = false;
      await made.store?.close();
      await Promise.all([...sentinels, ...servers].map((server) => server.stop()));
    });
    const master = await startRedis({ password });
    servers.push(master);
    for (let i = 0; i < 2; i++)
      servers.push(await startRedis({ password, replicaOf: { host: '127.0.0.1', port: master.port } }));
    for (let i = 0; i < 3; i++)
      sentinels.push(
        await startSentinel({ masterName: 'tags', master: { host: '127.0.0.1', port: master.port }, password }),
      );
    const url = sentinelStoreUrl(sentinels, 'tags', password);
    const s = (made.store = await openStore({ store: url, storePrefix: 'sentinel' }));
    await s.record('http://before.example/', ['failover'], { cache: true });
    // Acknowledged by both replicas before the kill (WAIT): Sentinel's new master has it.
    const direct = createClient({ url: master.url });
    await direct.connect();
    assert.equal(await direct.sendCommand(['WAIT', '2', '5000']), 2);
    direct.destroy();
    // Every sentinel knows the replicas and the other sentinels before the master dies.
    await sentinelsSettled(sentinels, 'tags', 2);

    const outcomes = { ok: 0, unavailable: 0, other: [] as string[], wrong: 0 };
    const reader = (async () => {
      while (running) {
        try {
          const urls = await s.urls('failover');
          if (urls.includes('http://before.example/')) outcomes.ok++;
          else outcomes.wrong++;
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'NS_ERR_STORE_UNAVAILABLE') outcomes.unavailable++;
          else outcomes.other.push(`${code}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await waitUntil(() => outcomes.ok >= 20, 'reads before the kill');
    const killedAt = Date.now();
    process.kill(master.pid()!, 'SIGKILL');
    await waitUntil(() => s.status() === 'degraded' || outcomes.unavailable > 0, 'the store notices', 30_000);
    const okBefore = outcomes.ok;
    await waitUntil(
      () => s.status() === 'ok' && outcomes.ok >= okBefore + 20,
      'reads again, from the new master',
      60_000,
    );
    const recovered = Date.now() - killedAt;
    // Writes go to the new master (a replica would refuse them: READONLY).
    await s.record('http://after.example/', ['failover'], { cache: true });
    assert.deepEqual(await s.urls('failover'), ['http://after.example/', 'http://before.example/']);
    running = false;
    await reader;
    t.diagnostic(
      `recovered ${recovered} ms after the kill; reads ${JSON.stringify({ ...outcomes, other: outcomes.other.length })}`,
    );
    assert.deepEqual(outcomes.other, []);
    assert.equal(outcomes.wrong, 0);
  },
);
