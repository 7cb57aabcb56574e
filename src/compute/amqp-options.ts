/**
 * The amqp transport's options, with their defaults (AMQP_DEFAULTS, in amqp-wire.ts: they are the wire's, shared by
 * both sides) and checks. Its definition is amqp-transport.ts; the caller's side amqp.ts, the service's
 * amqp-service.ts.
 */
import { checkClientTls, type ClientTls } from '../client-tls.ts';
import { invalidOption } from '../errors.ts';
import { AMQP_DEFAULTS, brokerUrls, type QueueType } from './amqp-wire.ts';
import { bool, whole } from './option-checks.ts';

export interface AmqpOptions {
  /**
   * The broker, amqp://user:pass@host:5672/vhost (required); or a cluster's nodes, one URL each (a list, or one string
   * of URLs separated by commas): a connection goes to the first that answers, starting at a random node, and a
   * reconnection starts at the node after the one it lost.
   */
  url?: string | string[];
  /** amqps: this connection's TLS: the CA to trust, a client certificate and its key (PEM, as tls.connect takes). */
  tls?: ClientTls;
  /** The task queue. Default nodescale.compute. */
  queue?: string;
  /** 'quorum' (default: replicated, delivery counting) or 'classic' (faster, one node). */
  queueType?: QueueType;
  /** Deliveries of one task before it is dead-lettered as poison. Default 5. */
  maxDeliveries?: number;
  /** Publisher confirms (a call is accepted once the broker has it). Default true. */
  confirm?: boolean;
}

export interface ResolvedAmqpOptions {
  /** The first node's URL, for messages. */
  url: string;
  /** Every node's URL (one for a single broker). */
  urls: string[];
  tls: ClientTls | undefined;
  queue: string;
  queueType: QueueType;
  maxDeliveries: number;
  confirm: boolean;
}

export function resolveAmqpOptions(options: Readonly<Record<string, unknown>>): ResolvedAmqpOptions {
  if (options.url === undefined)
    throw invalidOption('url', 'the broker URL (amqp://…) with the amqp transport', undefined);
  const queueType = options.queueType ?? AMQP_DEFAULTS.queueType;
  if (queueType !== 'quorum' && queueType !== 'classic')
    throw invalidOption('queueType', 'quorum or classic', queueType);
  const queue = options.queue ?? AMQP_DEFAULTS.queue;
  if (typeof queue !== 'string' || !/^[\w.:-]{1,200}$/.test(queue) || queue.startsWith('amq.'))
    throw invalidOption(
      'queue',
      'a queue name of letters, digits and . _ : - (not amq.…, the broker keeps those)',
      queue,
    );
  const urls = brokerUrls('url', options.url);
  const url = urls[0]!;
  return {
    url,
    urls,
    tls: checkClientTls('tls', options.tls as ClientTls | undefined, url),
    queue,
    queueType,
    maxDeliveries: whole('maxDeliveries', options.maxDeliveries, AMQP_DEFAULTS.maxDeliveries, 1),
    confirm: bool('confirm', options.confirm, AMQP_DEFAULTS.confirm),
  };
}
