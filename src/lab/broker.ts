/**
 * A RabbitMQ cluster in the lab: one node per broker host, formed at boot by classic peer discovery (every node is
 * given the list), quorum queues replicated across them. Cluster partitions are handled by `pause_minority`: a node
 * that can see fewer than half of the cluster stops serving (closes its clients' connections) until it sees a
 * majority again, so a minority never answers what the majority also answers; with three nodes, one cut-off node
 * pauses and two go on (docs/lab.md says why not autoheal).
 */
import { randomBytes } from 'node:crypto';
import { startRabbitMq, type RabbitMqNode } from '../servers/rabbitmq.ts';
import type { LabHost } from './network.ts';

export interface BrokerCluster {
  /** One per host, in order: `url` of each is amqp://nodescale:…@<host address>:5672. */
  readonly nodes: readonly { host: LabHost; node: RabbitMqNode; name: string }[];
  /** Every node's URL: what a client given the cluster connects through, trying each in turn. */
  readonly urls: readonly string[];
  stop(): Promise<void>;
}

export const AMQP_PORT = 5672;

export async function startBrokerCluster(hosts: LabHost[]): Promise<BrokerCluster> {
  const peers = hosts.map((host) => `rabbit@${host.name}`);
  const password = randomBytes(18).toString('base64url');
  const started = await Promise.allSettled(
    hosts.map(async (host, i) => ({
      host,
      name: peers[i]!,
      node: await startRabbitMq({
        port: AMQP_PORT,
        startTimeoutMs: 120_000,
        // A partition is seen when Erlang's distribution gives up on a peer: after net_ticktime (60 s by default,
        // noticed in 45 to 75 s); 10 s here, so that the minority pauses within about 10 s of a cut.
        config: ['cluster_partition_handling = pause_minority', 'net_ticktime = 10'],
        lab: { namespace: host.ns, address: host.address, nodeName: peers[i]!, peers, password },
      }),
    })),
  );
  const nodes = started.flatMap((entry) => (entry.status === 'fulfilled' ? [entry.value] : []));
  const failed = started.find((entry) => entry.status === 'rejected');
  if (failed !== undefined) {
    // One node that did not start stops the others too: nothing is left running, nor its directory.
    await Promise.all(nodes.map(({ node }) => node.stop()));
    throw failed.reason;
  }
  return {
    nodes,
    urls: nodes.map(({ node }) => node.url),
    stop: async () => {
      await Promise.all(nodes.map(({ node }) => node.stop()));
    },
  };
}
