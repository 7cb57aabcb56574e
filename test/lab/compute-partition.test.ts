/**
 * The fleet lab's compute tier: two compute hosts, each running `nodescale compute-worker`, behind a RabbitMQ cluster
 * of three broker hosts. One compute host is cut off the network (its link down) with tasks in hand: the broker
 * notices within the heartbeat (5 s, two missed beats) and redelivers them to the other host, so every call is
 * answered, once, in seconds rather than the 30 minutes of a consumer acknowledgement timeout; healed, the host
 * reconnects by itself and serves again. Root only: skipped, saying why, where namespaces cannot be made. Everything
 * made is removed, pass or fail.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { createCompute } from '../../src/compute/compute.ts';
import type { Compute } from '../../src/compute/index.ts';
import { startBrokerCluster, type BrokerCluster } from '../../src/lab/broker.ts';
import { createLabNetwork } from '../../src/lab/network.ts';
import { namespacesUnavailable } from '../../src/servers/netns.ts';
import { BIN } from '../helpers/cli.ts';
import { COMPUTE_TASKS } from '../helpers/compute-worker.ts';
import { waitUntil } from '../helpers/wait.ts';

const unavailable = namespacesUnavailable();

test(
  'a compute host partitioned with tasks in hand: they are redelivered to the other host within the heartbeat, each call answered once',
  { skip: unavailable ?? false, timeout: 240_000 },
  async (t) => {
    const lab = await createLabNetwork([
      ...[1, 2, 3].map((i) => ({ name: `broker${i}`, region: 1 })),
      ...[1, 2].map((i) => ({ name: `compute${i}`, region: 1 })),
    ]);
    const made: { cluster?: BrokerCluster; compute?: Compute; workers: ChildProcess[] } = { workers: [] };
    let running = true;
    t.after(async () => {
      running = false;
      lab.heal('compute1');
      await made.compute?.close();
      for (const worker of made.workers) worker.kill('SIGKILL');
      await made.cluster?.stop();
      await lab.remove();
    });
    const cluster = (made.cluster = await startBrokerCluster(['broker1', 'broker2', 'broker3'].map(lab.host)));
    const queue = 'lab.partition';
    const broker = cluster.urls.join(',');
    const stderr = new Map<string, string>();
    const pids = new Map<number, string>();
    for (const name of ['compute1', 'compute2']) {
      // The broker's URLs (with the password) through the environment, as a user would give them: not in ps.
      const worker = lab
        .host(name)
        .ns.spawn([process.execPath, BIN, 'compute-worker', COMPUTE_TASKS, '--queue', queue, '--threads', '1'], {
          env: { ...process.env, NODESCALE_BROKER_URL: broker },
        });
      made.workers.push(worker);
      stderr.set(name, '');
      worker.stderr!.on('data', (chunk: Buffer) => stderr.set(name, stderr.get(name)! + chunk.toString()));
      pids.set(worker.pid!, name);
    }
    await waitUntil(
      () => [...stderr.values()].every((text) => /compute-worker: consuming/.test(text)),
      'both compute hosts consume',
      60_000,
    );
    const compute = (made.compute = await createCompute({ transport: 'amqp', url: cluster.urls.slice(), queue }));

    // 8 calls in flight, each holding its task 300 ms: both hosts hold some at any moment.
    const outcomes = new Map<number, { host?: string; error?: string; at: number }>();
    let sent = 0;
    const caller = async () => {
      while (running) {
        const id = sent++;
        try {
          const reply = (await compute.call('hold', { ms: 300, id }, { deadlineMs: 60_000 })) as {
            id: number;
            pid: number;
          };
          assert.equal(reply.id, id, "the answer is this call's");
          if (outcomes.has(id)) throw new Error(`call ${id} answered twice`);
          outcomes.set(id, { host: pids.get(reply.pid) ?? `pid ${reply.pid}`, at: Date.now() });
        } catch (error) {
          outcomes.set(id, {
            error: `${(error as { code?: string }).code}: ${(error as Error).message}`,
            at: Date.now(),
          });
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, caller));
    const servedBy = (host: string, since = 0) =>
      [...outcomes.values()].filter((outcome) => outcome.host === host && outcome.at >= since).length;
    await waitUntil(() => servedBy('compute1') >= 10 && servedBy('compute2') >= 10, 'both hosts answer', 60_000);

    const cutAt = Date.now();
    const inFlightAtCut = sent;
    lab.partition('compute1');
    // Every call made before the cut is answered: compute1's share comes from compute2, once the broker drops it.
    await waitUntil(
      () => Array.from({ length: inFlightAtCut }, (_, id) => outcomes.has(id)).every(Boolean),
      'the calls in flight at the cut are answered',
      90_000,
    );
    const redeliveredMs = Date.now() - cutAt;
    const lateOnes = [...outcomes.entries()].filter(
      ([id, outcome]) => id < inFlightAtCut && outcome.at - cutAt > 1_000,
    );

    lab.heal('compute1');
    const healedAt = Date.now();
    await waitUntil(() => servedBy('compute1', healedAt) >= 5, 'compute1 serves again after the heal', 120_000);
    running = false;
    await load;
    const failed = [...outcomes.values()].filter((outcome) => outcome.error !== undefined);
    t.diagnostic(
      `${outcomes.size} calls; the calls in flight at the cut answered within ${redeliveredMs} ms ` +
        `(${lateOnes.length} waited for the redelivery: ${lateOnes.map(([id, o]) => `${id} at +${o.at - cutAt} ms ${o.host ?? o.error}`).join(', ')}); ` +
        `compute1 served again ${Date.now() - healedAt} ms after the heal`,
    );
    assert.deepEqual(failed, []);
    assert.ok(lateOnes.length > 0, 'compute1 held tasks when it was cut off');
    assert.ok(
      lateOnes.every(([, outcome]) => outcome.host === 'compute2'),
      'redelivered to the other host',
    );
    assert.equal(outcomes.size, sent, 'every call answered, once');
  },
);
