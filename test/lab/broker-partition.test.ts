/**
 * The fleet lab's broker cut in two: the node the caller is connected to loses its link for 30 s, then heals. The
 * cluster runs `pause_minority`: the cut-off node, seeing one node of three, pauses (it stops serving and closes its
 * clients' connections) instead of going on alone; the caller notices within its heartbeat, reconnects to a node of
 * the majority, and its idempotent calls in flight are sent again there. Every call is answered once, none wrong;
 * healed, the node rejoins and the cluster has no partition left. Root only: skipped, saying why, where namespaces
 * cannot be made. Everything made is removed, pass or fail.
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
  "the caller's broker node partitioned for 30 s: it pauses (pause_minority), the caller moves to the majority, every call answered once; healed, the cluster is whole",
  { skip: unavailable ?? false, timeout: 300_000 },
  async (t) => {
    const lab = await createLabNetwork([
      ...[1, 2, 3].map((i) => ({ name: `broker${i}`, region: 1 })),
      { name: 'compute1', region: 1 },
    ]);
    const made: { cluster?: BrokerCluster; compute?: Compute; worker?: ChildProcess; cut?: string } = {};
    let running = true;
    t.after(async () => {
      running = false;
      if (made.cut !== undefined) lab.heal(made.cut);
      await made.compute?.close();
      made.worker?.kill('SIGKILL');
      await made.cluster?.stop();
      await lab.remove();
    });
    const cluster = (made.cluster = await startBrokerCluster(['broker1', 'broker2', 'broker3'].map(lab.host)));
    const rabbitmqctl = (via: number, args: string[]) => {
      const { host, name } = cluster.nodes[via]!;
      return host.ns.exec(['rabbitmqctl', '-n', name, ...args, '--formatter', 'json'], 60_000);
    };
    const queue = 'lab.cut';
    let err = '';
    made.worker = lab
      .host('compute1')
      .ns.spawn([process.execPath, BIN, 'compute-worker', COMPUTE_TASKS, '--queue', queue, '--threads', '2'], {
        env: { ...process.env, NODESCALE_BROKER_URL: cluster.urls.join(',') },
      });
    made.worker.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    await waitUntil(() => /compute-worker: consuming/.test(err), 'the compute host consumes', 60_000);
    const compute = (made.compute = await createCompute({ transport: 'amqp', url: cluster.urls.slice(), queue }));
    assert.equal(await compute.call('echo', 'hello'), 'hello');

    // The node this caller is connected to: the one cut off.
    const broker = compute.stats().broker;
    const victim = cluster.nodes.find((node) => broker?.includes(`@${node.host.address}:`));
    assert.ok(victim, `the caller is connected to a node of the cluster: ${broker}`);
    const witness = cluster.nodes.findIndex((node) => node !== victim);

    const outcomes = new Map<number, string>();
    let refused = 0;
    let sent = 0;
    const caller = async () => {
      while (running) {
        const id = sent++;
        try {
          const reply = (await compute.call('echo', id, { idempotent: true, deadlineMs: 60_000 })) as number;
          if (outcomes.has(id)) throw new Error(`call ${id} answered twice`);
          outcomes.set(id, reply === id ? 'ok' : `wrong: ${reply}`);
        } catch (error) {
          const { code, retryable } = error as { code?: string; retryable?: boolean };
          // Refused before it was accepted (no connection at that moment): a caller retries; nothing was lost.
          if (code === 'NS_ERR_COMPUTE_UNAVAILABLE' && retryable === true) refused++;
          else outcomes.set(id, `${code}: ${(error as Error).message}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, caller));
    const answered = () => [...outcomes.values()].filter((outcome) => outcome === 'ok').length;
    await waitUntil(() => answered() >= 100, 'calls answered before the cut', 60_000);

    const cutAt = Date.now();
    made.cut = victim.host.name;
    lab.partition(victim.host.name);
    // The majority goes on: calls are answered again, through another node.
    const atCut = answered();
    await waitUntil(() => answered() >= atCut + 200, 'calls answered through the majority', 120_000);
    const movedMs = Date.now() - cutAt;
    // The cut-off node paused itself: it does not serve (checked from its own host, which still reaches it).
    await waitUntil(
      async () =>
        (await victim.host.ns.exec(['rabbitmq-diagnostics', '-q', '-n', victim.name, 'check_running'])).code !== 0,
      'the minority node pauses',
      60_000,
    );
    const pausedMs = Date.now() - cutAt;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 30_000 - (Date.now() - cutAt))));
    lab.heal(victim.host.name);
    made.cut = undefined;
    const healedAt = Date.now();
    await waitUntil(
      async () => {
        const status = await rabbitmqctl(witness, ['cluster_status']);
        if (status.code !== 0) return false;
        const parsed = JSON.parse(status.stdout) as { running_nodes: string[]; partitions: Record<string, unknown> };
        return parsed.running_nodes.length === 3 && Object.keys(parsed.partitions).length === 0;
      },
      'the cluster is whole again, no partition left',
      120_000,
    );
    const rejoinedMs = Date.now() - healedAt;
    const atHeal = answered();
    await waitUntil(() => answered() >= atHeal + 100, 'calls answered after the heal', 60_000);
    running = false;
    await load;
    const bad = [...outcomes.entries()].filter(([, outcome]) => outcome !== 'ok');
    t.diagnostic(
      `cut ${victim.name}; calls answered through the majority ${movedMs} ms after the cut; the node paused ` +
        `within ${pausedMs} ms; rejoined ${rejoinedMs} ms after the heal; ${answered()} calls answered, ` +
        `${refused} refused while reconnecting, ${bad.length} lost or wrong`,
    );
    assert.deepEqual(bad, []);
    assert.equal(outcomes.size + refused, sent, 'every call has one outcome');
  },
);
