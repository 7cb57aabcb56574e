/**
 * What Redis replication loses at a failover, and what `WAIT` changes (docs/demo.md, docs/lab.md): a master and its
 * replica (private servers on loopback); 64 writes in flight at all times, each a SET of its own key, counted as
 * acknowledged when Redis answered OK (and, with WAIT, once `WAIT 1 1000` said the replica has it); the replica
 * falling 300 ms behind (stopped), then the master killed with SIGKILL, the replica promoted (`REPLICAOF NO ONE`,
 * what Sentinel does), and every acknowledged key looked for on it. Rounds alternate the two modes; the figures are the acknowledged writes missing, and the
 * throughput of WAIT ÷ without.
 *
 *   npm run bench -- redis-wait
 */
import { createClient } from '@redis/client';
import { startRedis } from '../src/servers/redis.ts';

export interface WaitRound {
  wait: boolean;
  acknowledged: number;
  missing: number;
  writesPerSecond: number;
}

const LAG_MS = 300;

async function round(wait: boolean, runMs: number): Promise<WaitRound> {
  const password = 'bench-wait';
  const master = await startRedis({ password });
  const replica = await startRedis({ password, replicaOf: { host: '127.0.0.1', port: master.port } });
  try {
    const writer = createClient({ url: master.url, disableOfflineQueue: true });
    writer.on('error', () => {});
    await writer.connect();
    // The replica in step first: its initial sync done.
    for (let i = 0; i < 100 && Number(await writer.sendCommand(['WAIT', '1', '100'])) < 1; i++);
    const acknowledged: string[] = [];
    let running = true;
    let next = 0;
    const started = performance.now();
    let stoppedAt = 0;
    const loop = async () => {
      while (running) {
        const key = `k:${next++}`;
        try {
          if ((await writer.set(key, '1')) !== 'OK') continue;
          if (wait && Number(await writer.sendCommand(['WAIT', '1', '1000'])) < 1) continue;
          acknowledged.push(key); // an OK that arrives after the kill was given before it: acknowledged too
        } catch {
          return; // the master is gone
        }
      }
    };
    const loops = Array.from({ length: 64 }, loop);
    // The replica falls behind for the last LAG_MS before the master dies (stopped: a slow link, a busy disk, a
    // pause), as replicas do; on one machine without that, the replication stream is flushed to the replica's socket
    // before the kill and nothing is lost.
    await new Promise((resolve) => setTimeout(resolve, runMs - LAG_MS));
    process.kill(replica.pid()!, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, LAG_MS));
    process.kill(master.pid()!, 'SIGKILL');
    stoppedAt = performance.now();
    running = false;
    await Promise.all(loops);
    process.kill(replica.pid()!, 'SIGCONT');
    writer.destroy();
    const promoted = createClient({ url: replica.url });
    await promoted.connect();
    await promoted.sendCommand(['REPLICAOF', 'NO', 'ONE']);
    let missing = 0;
    for (let i = 0; i < acknowledged.length; i += 1000) {
      const present = await promoted.sendCommand<number>(['EXISTS', ...acknowledged.slice(i, i + 1000)]);
      missing += Math.min(1000, acknowledged.length - i) - Number(present);
    }
    promoted.destroy();
    return {
      wait,
      acknowledged: acknowledged.length,
      missing,
      writesPerSecond: acknowledged.length / ((stoppedAt - started) / 1000),
    };
  } finally {
    await Promise.all([master.stop(), replica.stop()]);
  }
}

export async function redisWait(options: { rounds: number; runMs: number }): Promise<{
  rounds: WaitRound[];
  missingWithout: number;
  missingWith: number;
  acknowledgedWithout: number;
  acknowledgedWith: number;
  throughputRatio: number;
}> {
  const rounds: WaitRound[] = [];
  for (let i = 0; i < options.rounds; i++)
    for (const wait of i % 2 === 0 ? [false, true] : [true, false]) rounds.push(await round(wait, options.runMs));
  const sum = (wait: boolean, field: 'missing' | 'acknowledged' | 'writesPerSecond') =>
    rounds.filter((r) => r.wait === wait).reduce((total, r) => total + r[field], 0);
  return {
    rounds,
    missingWithout: sum(false, 'missing'),
    missingWith: sum(true, 'missing'),
    acknowledgedWithout: sum(false, 'acknowledged'),
    acknowledgedWith: sum(true, 'acknowledged'),
    throughputRatio: sum(true, 'writesPerSecond') / sum(false, 'writesPerSecond'),
  };
}
