/**
 * The fleet lab's broker: a RabbitMQ cluster of three nodes, each on a host of its own (a network namespace), and
 * the amqp transport given the cluster's URL list. A node is killed under load, twice: the quorum queue's leader
 * (the caller on another node), and the node the caller and the service are connected to (with the caller's calls in
 * the queue, their reply addresses on the dead node). Every call is answered (idempotent calls in flight are sent
 * again on the next connection, which goes to another node), the caller and the service reconnect by themselves, and
 * nothing is lost, answered wrong or dead-lettered. Root only: skipped, saying why, where namespaces cannot be made.
 * Everything made is removed, pass or fail.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startAmqpService } from '../../src/compute/amqp-service.ts';
import { createCompute } from '../../src/compute/compute.ts';
import type { Compute } from '../../src/compute/index.ts';
import type { ComputeService } from '../../src/compute/service.ts';
import { startBrokerCluster, type BrokerCluster } from '../../src/lab/broker.ts';
import { createLabNetwork } from '../../src/lab/network.ts';
import { namespacesUnavailable } from '../../src/servers/netns.ts';
import { COMPUTE_TASKS } from '../helpers/compute-worker.ts';
import { waitUntil } from '../helpers/wait.ts';

const unavailable = namespacesUnavailable();
const QUEUE = 'lab.tasks';

/** The quorum queue's members and which is the leader, as the given node sees them (rabbitmq-queues, not list_queues:
 * that one waits 60 s on a member it cannot reach). */
async function quorumStatus(cluster: BrokerCluster, via: number, queue: string) {
  const { host, name } = cluster.nodes[via]!;
  const { stdout } = await host.ns.exec(['rabbitmq-queues', '-n', name, 'quorum_status', queue, '--formatter', 'json']);
  const members = JSON.parse(stdout) as { 'Node Name': string; 'Raft State': string }[];
  return {
    members: members.map((member) => member['Node Name']),
    leader: members.find((member) => member['Raft State'] === 'leader')?.['Node Name'],
  };
}

type Node = BrokerCluster['nodes'][number];
const on = (client: { stats(): { broker?: string | null } }, node: Node) =>
  client.stats().broker?.includes(`@${node.host.address}:`) === true;

interface Cluster {
  cluster: BrokerCluster;
  urls: string[];
  made: { service?: ComputeService; compute?: Compute };
  /** What the service logged at warn. */
  warnings: string[];
  startService(): Promise<ComputeService>;
}

/** Three broker hosts, a service and a caller over the URL list; all removed after the test, pass or fail. */
async function cluster3(t: TestContext): Promise<Cluster> {
  const lab = await createLabNetwork([1, 2, 3].map((i) => ({ name: `broker${i}`, region: 1 })));
  const made: { cluster?: BrokerCluster; service?: ComputeService; compute?: Compute } = {};
  // In this order: the clients first (their connections would otherwise wait on a node that is gone), then the
  // cluster, then the network.
  t.after(async () => {
    await made.compute?.close();
    await made.service?.stop();
    await made.cluster?.stop();
    await lab.remove();
  });
  const cluster = (made.cluster = await startBrokerCluster([...lab.hosts.values()]));
  const running = await lab
    .host('broker1')
    .ns.exec(['rabbitmqctl', '-n', 'rabbit@broker1', 'cluster_status', '--formatter', 'json']);
  assert.equal((JSON.parse(running.stdout) as { running_nodes: string[] }).running_nodes.length, 3, running.stderr);
  const urls = [...cluster.urls];
  const warnings: string[] = [];
  const startService = async () =>
    (made.service = await startAmqpService({
      url: urls,
      tasks: COMPUTE_TASKS,
      queue: QUEUE,
      threads: 1,
      log: (level, message, fields) =>
        void (
          level === 'warn' &&
          warnings.push(`${new Date().toISOString().slice(11, 23)} ${message} ${JSON.stringify(fields ?? {})}`)
        ),
    }));
  await startService();
  made.compute = await createCompute({ transport: 'amqp', url: urls, queue: QUEUE });
  assert.equal(await made.compute.call('echo', 'hello'), 'hello');
  return { cluster, urls, made, warnings, startService };
}

/** 8 callers of idempotent calls; `victim` is killed once 200 are answered; resolves once 500 more are. */
async function killUnderLoad(t: TestContext, compute: Compute, victim: Node) {
  let stop = false;
  /** Each failure's code and message, counted: what the test says when it fails. */
  const errors = new Map<string, number>();
  t.after(() => {
    stop = true;
    if (errors.size > 0) t.diagnostic(`failures: ${[...errors].map(([said, n]) => `${n} × ${said}`).join('; ')}`);
  });
  let answered = 0;
  let wrong = 0;
  let refused = 0;
  const lost: string[] = [];
  let n = 0;
  const worker = async () => {
    while (!stop) {
      const input = `call-${n++}`;
      try {
        const output = await compute.call('echo', input, { idempotent: true, deadlineMs: 30_000 });
        if (output === input) answered++;
        else wrong++;
      } catch (error) {
        const { code, retryable } = error as { code?: string; retryable?: boolean };
        const said = `${code}: ${(error as Error).message.replace(/call-\d+/g, 'call-N').slice(0, 160)}`;
        errors.set(said, (errors.get(said) ?? 0) + 1);
        // Refused before it was accepted (no connection at that moment): a user retries; nothing was lost.
        if (code === 'NS_ERR_COMPUTE_UNAVAILABLE' && retryable === true) refused++;
        else lost.push(`${input}: ${code} ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, worker));
  await waitUntil(() => answered >= 200, 'calls answered before the kill', 60_000);
  const before = answered;
  const killedAt = Date.now();
  process.kill(victim.node.pid()!, 'SIGKILL');
  await waitUntil(() => answered >= before + 500, 'calls answered after the kill', 120_000);
  const within = Date.now() - killedAt;
  stop = true;
  await load;
  t.diagnostic(
    `answered ${answered} (${answered - before} after the kill, 500 of them within ${within} ms); ` +
      `refused while reconnecting ${refused}`,
  );
  return { lost, wrong };
}

test(
  'the quorum leader node killed under load: every call answered, caller and service move to another node',
  { skip: unavailable ?? false, timeout: 240_000 },
  async (t) => {
    const { cluster, urls, made } = await cluster3(t);
    const status = await quorumStatus(cluster, 0, QUEUE);
    assert.equal(status.members.length, 3, 'replicated on every node');
    const leader = cluster.nodes.find((node) => node.name === status.leader);
    assert.ok(leader, `a leader among ${status.members.join(', ')}`);
    t.diagnostic(`leader ${leader.name}; members ${status.members.join(', ')}`);
    // The caller on another node than the leader (each client starts at a random node): the caller's own node
    // dying is the next test.
    for (let i = 0; i < 20 && on(made.compute!, leader); i++) {
      await made.compute!.close();
      made.compute = await createCompute({ transport: 'amqp', url: urls, queue: QUEUE });
    }
    assert.ok(!on(made.compute!, leader), 'a caller on another node than the leader');

    const { lost, wrong } = await killUnderLoad(t, made.compute!, leader);
    const after = await quorumStatus(cluster, cluster.nodes.indexOf(leader) === 0 ? 1 : 0, QUEUE);
    t.diagnostic(`new leader ${after.leader}`);
    assert.deepEqual(lost, []);
    assert.equal(wrong, 0);
    assert.ok(after.leader !== undefined && after.leader !== leader.name, 'another node leads the queue');
  },
);

test(
  "the caller's own node killed under load, the service's too: its queued calls answered, none dead-lettered",
  {
    skip: unavailable ?? false,
    timeout: 240_000,
  },
  async (t) => {
    const { cluster, made, warnings, startService } = await cluster3(t);
    const mine = cluster.nodes.find((node) => on(made.compute!, node));
    assert.ok(mine, 'the caller is connected');
    // The service on the same node: what it holds comes back to it, after its reconnection, with reply addresses
    // on the dead node (RabbitMQ 3.10 fails the connection that replies to one: amqp-service.ts, `blame`).
    for (let i = 0; i < 30 && !on(made.service!, mine); i++) {
      await made.service!.stop();
      await startService();
    }
    assert.ok(on(made.service!, mine), 'the service on the caller’s node');
    t.diagnostic(`caller and service on ${mine.name}`);

    // What the service said, pass or fail.
    t.after(() =>
      t.diagnostic(
        `service: ${JSON.stringify(made.service?.stats())}; caller: ${JSON.stringify(made.compute?.stats())}; ` +
          `warnings: ${warnings.join(' | ')}`,
      ),
    );
    const { lost, wrong } = await killUnderLoad(t, made.compute!, mine);
    const stats = made.service!.stats();
    assert.deepEqual(lost, []);
    assert.equal(wrong, 0);
    assert.equal(stats.deadLettered, 0, 'no task dead-lettered as poison');
    // Its own node's death, then at most a few failed connections (one per unreachable caller), never a flapping
    // channel.
    const reconnections = warnings.filter((warning) => warning.includes('compute: lost the broker')).length;
    assert.ok(reconnections <= 4, `reconnected ${reconnections} times: ${warnings.join(' | ')}`);
  },
);
