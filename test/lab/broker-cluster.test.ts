/**
 * The fleet lab's broker: a RabbitMQ cluster of three nodes, each on a host of its own (a network namespace), and
 * the amqp transport given the cluster's URL list. The quorum queue's leader node is killed under load: every call
 * is answered (idempotent calls in flight are sent again on the next connection, which goes to another node), the
 * caller and the service reconnect by themselves, and nothing is lost or answered wrong. Root only: skipped, saying
 * why, where namespaces cannot be made. Everything made is removed, pass or fail.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
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

test(
  'the quorum leader node killed under load: every call answered, caller and service move to another node',
  { skip: unavailable ?? false, timeout: 240_000 },
  async (t) => {
    const lab = await createLabNetwork([1, 2, 3].map((i) => ({ name: `broker${i}`, region: 1 })));
    const made: { cluster?: BrokerCluster; service?: ComputeService; compute?: Compute } = {};
    let stop = false;
    // In this order: the clients first (their connections would otherwise wait on a node that is gone), then the
    // cluster, then the network.
    t.after(async () => {
      stop = true;
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

    const queue = 'lab.tasks';
    const urls = [...cluster.urls];
    made.service = await startAmqpService({ url: urls, tasks: COMPUTE_TASKS, queue, threads: 1 });
    // The queue's leader: the node whose death the queue must survive.
    made.compute = await createCompute({ transport: 'amqp', url: urls, queue });
    assert.equal(await made.compute.call('echo', 'hello'), 'hello');
    const status = await quorumStatus(cluster, 0, queue);
    assert.equal(status.members.length, 3, 'replicated on every node');
    const leader = cluster.nodes.find((node) => node.name === status.leader);
    assert.ok(leader, `a leader among ${status.members.join(', ')}`);
    t.diagnostic(`leader ${leader.name}; members ${status.members.join(', ')}`);
    // The caller on another node than the leader (each client starts at a random node): a caller whose own node
    // dies with its calls in the queue is the open case in docs/lab.md (the services' channel flaps until the
    // tasks are dead-lettered), not this test's.
    const onLeader = () => made.compute!.stats().broker?.includes(`@${leader.host.address}:`) === true;
    for (let i = 0; i < 20 && onLeader(); i++) {
      await made.compute.close();
      made.compute = await createCompute({ transport: 'amqp', url: urls, queue });
    }
    assert.ok(!onLeader(), 'a caller on another node than the leader');
    const compute = made.compute;

    let answered = 0;
    let wrong = 0;
    let refused = 0;
    const lost: string[] = [];
    let n = 0;
    const caller = compute;
    const worker = async () => {
      while (!stop) {
        const input = `call-${n++}`;
        try {
          const output = await caller.call('echo', input, { idempotent: true, deadlineMs: 30_000 });
          if (output === input) answered++;
          else wrong++;
        } catch (error) {
          const { code, retryable } = error as { code?: string; retryable?: boolean };
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
    process.kill(leader.node.pid()!, 'SIGKILL');
    await waitUntil(() => answered >= before + 500, 'calls answered after the leader died', 120_000);
    stop = true;
    await load;
    const after = await quorumStatus(cluster, cluster.nodes.indexOf(leader) === 0 ? 1 : 0, queue);
    t.diagnostic(
      `answered ${answered} (${answered - before} after the kill, 500 of them within ${Date.now() - killedAt} ms); ` +
        `refused while reconnecting ${refused}; new leader ${after.leader}`,
    );
    assert.deepEqual(lost, []);
    assert.equal(wrong, 0);
    assert.ok(after.leader !== undefined && after.leader !== leader.name, 'another node leads the queue');
  },
);
