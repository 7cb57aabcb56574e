/**
 * What the amqp transport's two sides agree on (amqp.ts, the caller; amqp-service.ts, the compute service): the
 * queues, the messages, and how a connection to the broker is made and made again.
 *
 * Queues (declared by both sides, idempotently; their arguments cannot change under a name — a new setting needs a
 * new queue name):
 *   <queue>          the tasks: quorum by default (replicated in a cluster, delivery counting), or classic; a message
 *                    that passes its delivery limit, or is rejected as poison, is dead-lettered to <queue>.dead
 *   <queue>.dead     dead letters: a compute service answers each caller with NS_ERR_COMPUTE_POISON (an expired
 *                    task's caller timed out already: it is dropped) and moves the message to <queue>.parked
 *   <queue>.parked   poison tasks, kept for people to look at (at most 10 000, oldest dropped)
 *
 * A call is one persistent message: body JSON { task, input }; correlationId; replyTo (direct reply-to by default);
 * `expiration`, the milliseconds left of its deadline (the broker drops it when they run out), and the header
 * x-nodescale-deadline, the deadline as epoch ms (a service never starts a task past it). The reply is JSON
 * { ok: true, output } or { ok: false, code, message }.
 */
import type { ChannelModel } from 'amqplib';
import { invalidOption, NodescaleError, type ErrorCode } from '../errors.ts';
import { redactUrl } from '../redact.ts';

export type QueueType = 'quorum' | 'classic';

export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
export const DEADLINE_HEADER = 'x-nodescale-deadline';
/** Classic queues count deliveries here (quorum queues count them themselves: x-delivery-count). */
export const DELIVERIES_HEADER = 'x-nodescale-deliveries';

export const AMQP_DEFAULTS = Object.freeze({
  queue: 'nodescale.compute',
  queueType: 'quorum' as QueueType,
  /** Deliveries of one task before it is dead-lettered as poison (a task that kills its service, again and again). */
  maxDeliveries: 5,
  /** Tasks a compute service holds unacknowledged at once. */
  prefetch: 32,
  /** Publisher confirms: a call counts as accepted once the broker has it. */
  confirm: true,
  /** Reconnection backoff. */
  reconnectInitialMs: 100,
  reconnectMaxMs: 5000,
});

export const deadQueue = (queue: string) => `${queue}.dead`;
export const parkedQueue = (queue: string) => `${queue}.parked`;

export interface Topology {
  queue: string;
  queueType: QueueType;
  maxDeliveries: number;
}

/** True when the queue exists (checked on a channel of its own: a missing queue closes the channel it is asked on). */
export async function queueExists(connection: ChannelModel, queue: string): Promise<boolean> {
  const probe = await connection.createChannel();
  probe.on('error', () => {});
  try {
    await probe.checkQueue(queue);
    await probe.close();
    return true;
  } catch {
    return false;
  }
}

/** Declares the three queues (see above). */
export async function declareTopology(
  channel: { assertQueue(name: string, options: object): Promise<unknown> },
  { queue, queueType, maxDeliveries }: Topology,
): Promise<void> {
  const type = { 'x-queue-type': queueType };
  await channel.assertQueue(parkedQueue(queue), { durable: true, arguments: { ...type, 'x-max-length': 10_000 } });
  await channel.assertQueue(deadQueue(queue), { durable: true, arguments: type });
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      ...type,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadQueue(queue),
      // A quorum queue counts redeliveries: past the limit, the task is dead-lettered.
      ...(queueType === 'quorum' ? { 'x-delivery-limit': maxDeliveries - 1 } : {}),
    },
  });
}

export interface TaskMessage {
  task: string;
  input: unknown;
}

export type ReplyMessage = { ok: true; output: unknown } | { ok: false; code: ErrorCode; message: string };

export function parseJson<T>(content: Buffer): T | null {
  try {
    return JSON.parse(content.toString('utf8')) as T;
  } catch {
    return null;
  }
}

/** A broker URL, checked before anything connects: amqp: or amqps:, with a host. */
export function brokerUrl(name: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw === '') throw invalidOption(name, 'an amqp:// or amqps:// URL', raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidOption(name, 'an amqp:// or amqps:// URL', redactUrl(raw));
  }
  if ((url.protocol !== 'amqp:' && url.protocol !== 'amqps:') || url.hostname === '') {
    throw invalidOption(name, 'an amqp:// or amqps:// URL', redactUrl(raw));
  }
  return raw;
}

/** What a failed connection attempt means, as one of our errors. */
export function connectError(url: string, error: unknown): NodescaleError {
  const message = (error as Error).message ?? String(error);
  const refused = /ACCESS_REFUSED|403|authentication/i.test(message);
  return new NodescaleError(
    refused ? 'NS_ERR_BROKER_AUTH' : 'NS_ERR_COMPUTE_UNAVAILABLE',
    `cannot connect to the broker at ${redactUrl(url)}: ${refused ? 'the credentials were refused' : message}`,
    { cause: error, retryable: !refused },
  );
}

/** One connection attempt, with Nagle off (it holds RPC round trips at ~40/s) and a connect timeout. */
export async function openConnection(url: string): Promise<ChannelModel> {
  // Loaded on first use: the pool and inline transports never load the AMQP client.
  const { connect } = await import('amqplib');
  try {
    const connection = await connect(url, {
      noDelay: true,
      timeout: 5000,
      clientProperties: { connection_name: `nodescale ${process.pid}` },
    });
    // From the first moment: an 'error' without a listener would throw; 'close' follows it, with the reason.
    connection.on('error', () => {});
    return connection;
  } catch (error) {
    throw connectError(url, error);
  }
}

/** The delay before reconnection attempt `attempt` (1, 2, …): exponential, with equal jitter. */
export function reconnectDelay(attempt: number, random = Math.random): number {
  const ceiling = Math.min(AMQP_DEFAULTS.reconnectMaxMs, AMQP_DEFAULTS.reconnectInitialMs * 2 ** (attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * Reconnection, for both sides: `schedule()` tries `open` after a backoff with jitter, again and again until it
 * succeeds (`onFailure` hears each failure); `succeeded()` starts the backoff over; `cancel()` stops trying. A caller's
 * timer is unref'd (`unref`): reconnecting alone does not keep an API process alive.
 */
export function reconnector(
  open: () => Promise<void>,
  onFailure: (error: Error) => void = () => {},
  { unref = false } = {},
) {
  let attempt = 0;
  let timer: NodeJS.Timeout | null = null;
  let cancelled = false;
  const schedule = (): void => {
    if (timer !== null || cancelled) return;
    timer = setTimeout(() => {
      timer = null;
      open().catch((error: Error) => {
        onFailure(error);
        schedule();
      });
    }, reconnectDelay(++attempt));
    if (unref) timer.unref();
  };
  return {
    schedule,
    succeeded: () => (attempt = 0),
    cancel: () => {
      cancelled = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}
