/**
 * The amqp transport, service's side (`nodescale compute-worker`): consumes the task queue and runs each task on its
 * own worker-thread pool (the pool transport), so one service uses every core of its machine.
 *
 * - **At-least-once execution, one answer.** A task is acknowledged only after its reply is published (both on one
 *   channel, in that order). A service that dies holding tasks leaves them unacknowledged: the broker redelivers them
 *   to another service. `prefetch` bounds what one service holds.
 * - **Poison ends.** A task delivered `maxDeliveries` times is dead-lettered (a quorum queue counts deliveries; on a
 *   classic queue this service counts them in a header, republishing a redelivered task with its count), and the
 *   dead-letter consumer answers its caller NS_ERR_COMPUTE_POISON and parks it.
 * - **Expired work never starts**: past its deadline (set on receipt from the time the caller had left: no two clocks
 *   need agree), a task is acknowledged and dropped.
 * - **Messages are untrusted input.** Task names are looked up among the module's own tasks and labelled in metrics
 *   only when they are one (others count under `(unknown)`); deadlines and delivery counts are clamped; replies go
 *   only to direct reply-to addresses; a parked poison task keeps no reply address.
 * - **The broker may restart**, or close the channel (a consumer acknowledgement timeout): the service reconnects with
 *   backoff and jitter, declares its queues and consumes again. What it held is redelivered by the broker, so its
 *   tasks here are cancelled (their threads freed); nothing is ever acknowledged on another channel.
 * - **stop()**: cancels the consumers (no new deliveries), finishes and acknowledges what it holds, then closes.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClientTls } from '../client-tls.ts';
import { CHANNELS, publish } from '../diagnostics.ts';
import { isNodescaleError, type ErrorCode } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { refuseUnknownOptions } from '../unknown-options.ts';
import {
  AMQP_DEFAULTS,
  deadQueue,
  declareTopology,
  DELIVERIES_HEADER,
  deliveriesOf,
  isReplyAddress,
  BrokerNodes,
  closeConnection,
  setUpWithin,
  parkedQueue,
  parseJson,
  reconnector,
  taskDeadline,
  type QueueType,
  type ReplyMessage,
  type TaskMessage,
} from './amqp-wire.ts';
import { resolveAmqpOptions } from './amqp-options.ts';
import { batcher } from './batcher.ts';
import { resolveComputeOptions } from './compute.ts';
import { createPoolCompute } from './pool.ts';
import type { ComputeService, ServiceHostOptions, ServiceModule } from './service.ts';
import { whole } from './option-checks.ts';
import { resolvePoolOptions } from './pool-options.ts';

export interface AmqpServiceOptions extends ServiceHostOptions {
  /** The broker, amqp://…; or a cluster's nodes, one URL each (tried in turn, as the caller does). */
  url: string | string[];
  /** amqps: this connection's TLS: the CA to trust, a client certificate and its key (PEM). */
  tls?: ClientTls;
  queue?: string;
  queueType?: QueueType;
  maxDeliveries?: number;
  /** Tasks held unacknowledged at once, 1 to 65 535. Default 4 per worker thread. */
  prefetch?: number;
}

interface Link {
  connection: ChannelModel;
  /** Where tasks come from, and are acknowledged; replies are confirmed on it. */
  channel: ConfirmChannel;
  consumers: string[];
  /** Replies published and not confirmed yet, in order: their numbers and reply addresses. */
  unconfirmed: Map<number, string>;
  published: number;
}

/**
 * The caller a direct reply-to address belongs to: `amq.rabbitmq.reply-to.<its channel>.<this call's key>`, the
 * channel being an encoded Erlang process id (which names its node).
 */
const callerOf = (replyTo: string) => replyTo.slice(0, replyTo.lastIndexOf('.'));

/** Callers whose replies are dropped (see `blame`): a few thousand at most, the oldest forgotten first. */
const UNREACHABLE_KEPT = 4096;

function computeMetrics(registry: Registry) {
  return {
    tasks: new Counter({
      name: 'nodescale_compute_tasks_total',
      help: 'Tasks run, by task and outcome.',
      labelNames: ['task', 'outcome'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'nodescale_compute_tasks_in_flight',
      help: 'Tasks held (running or waiting for a thread).',
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'nodescale_compute_task_duration_seconds',
      help: 'How long tasks ran, from delivery to reply.',
      labelNames: ['task'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    redelivered: new Counter({
      name: 'nodescale_compute_redeliveries_total',
      help: 'Tasks delivered again (a service died, or a connection was lost, holding them).',
      registers: [registry],
    }),
    deadLettered: new Counter({
      name: 'nodescale_compute_dead_lettered_total',
      help: 'Tasks dead-lettered as poison and answered NS_ERR_COMPUTE_POISON.',
      registers: [registry],
    }),
    expired: new Counter({
      name: 'nodescale_compute_expired_total',
      help: 'Tasks dropped unstarted because their deadline had passed (in the queue, or when delivered).',
      registers: [registry],
    }),
  };
}

/** AMQP's reply code for a broker that failed on its side. */
const INTERNAL_ERROR = 541;

const header = (message: ConsumeMessage, name: string): unknown => (message.properties.headers ?? {})[name];

/** Every option startAmqpService knows: any other name is a typo, refused with the nearest of these. */
const OPTION_NAMES = [
  'url',
  'tls',
  'tasks',
  'queue',
  'queueType',
  'maxDeliveries',
  'prefetch',
  'threads',
  'registry',
  'log',
  'onConsuming',
] as const satisfies readonly (keyof AmqpServiceOptions)[];

export async function startAmqpService(options: AmqpServiceOptions): Promise<ComputeService> {
  refuseUnknownOptions(options, OPTION_NAMES);
  const amqp = resolveAmqpOptions(options as unknown as Record<string, unknown>);
  // The service runs its tasks on a pool of its own: the pool's options (tasks, threads), and its queue holds what
  // the broker hands over (prefetch), never more.
  const threads = resolvePoolOptions(options as unknown as Record<string, unknown>).threads;
  const prefetch = whole('prefetch', options.prefetch, AMQP_DEFAULTS.prefetchPerThread * threads, 1, 65_535);
  const resolved = {
    ...resolveComputeOptions({ transport: 'pool', tasks: options.tasks, threads, maxQueue: prefetch }),
    ...amqp,
    threads,
  };
  const nodes = new BrokerNodes(resolved.urls);
  const log = options.log ?? (() => {});
  const registry = options.registry ?? new Registry();
  const metrics = computeMetrics(registry);
  // The threads run the tasks; its queue holds what the broker hands over (prefetch), never more.
  const pool = await createPoolCompute(resolved);
  const runTask = batcher(pool, resolved.threads);
  // The metrics' task label takes the module's own names only: names from messages are not a label set to grow.
  const taskNames = new Set(await pool.taskNames().catch(() => [] as string[]));
  const label = (task: string) => (taskNames.has(task) ? task : '(unknown)');
  let lastSkewLog = -Infinity;
  let link: Link | null = null;
  let stopping = false;
  const counts = { completed: 0, failed: 0, expired: 0, redelivered: 0, deadLettered: 0 };
  /** The tasks held, each with what cancels it (when its channel is lost, its result can never be delivered). */
  const inHand = new Map<ConsumeMessage, AbortController>();
  let idle: (() => void) | null = null;
  let consumingWaiters: (() => void)[] = [];

  const release = (message: ConsumeMessage) => {
    inHand.delete(message);
    metrics.inFlight.set(inHand.size);
    if (inHand.size === 0) idle?.();
  };

  /** Publishes a reply then acknowledges, on the channel the task came on, if that channel is still ours. */
  const answer = (from: Link, message: ConsumeMessage, reply: ReplyMessage) => {
    if (link !== from) return; // its channel is gone: the broker redelivers the task; this result is dropped
    const replyTo: unknown = message.properties.replyTo;
    if (isReplyAddress(replyTo) && !unreachable.has(callerOf(replyTo))) {
      const number = ++from.published;
      from.unconfirmed.set(number, replyTo);
      from.channel.sendToQueue(
        replyTo,
        Buffer.from(JSON.stringify(reply)),
        { correlationId: message.properties.correlationId, contentType: 'application/json' },
        (error) => {
          if (error === null || error === undefined) from.unconfirmed.delete(number);
        },
      );
    }
    from.channel.ack(message);
  };

  /**
   * RabbitMQ 3.10 (Debian 12's) fails the whole connection (541 INTERNAL_ERROR: its channel crashes in
   * `rabbit_channel:deliver_reply`) on a reply to a direct reply-to address whose node is not running: the reply of a
   * task whose caller was connected to a node that died. Redelivered, the task would be answered the same way, on
   * every connection, until it is dead-lettered as poison. The channel handles publications in order and confirms a
   * direct reply at once, so the reply that failed it is the oldest not confirmed: its caller (a channel on a node
   * that is gone, never to come back) is unreachable, and its other tasks are acknowledged without a reply.
   */
  const unreachable = new Set<string>();
  const blame = (from: Link) => {
    const [replyTo] = from.unconfirmed.values();
    if (replyTo === undefined) return;
    const caller = callerOf(replyTo);
    unreachable.add(caller);
    if (unreachable.size > UNREACHABLE_KEPT) unreachable.delete(unreachable.values().next().value!);
    log(
      'warn',
      "compute: the broker failed the connection on a reply to a caller whose node is gone: that caller's replies are dropped",
      {
        caller,
      },
    );
  };

  const onTask = (from: Link) => async (message: ConsumeMessage | null) => {
    if (message === null) return; // cancelled by the broker (the queue was deleted): the channel is reopened on close
    const now = Date.now();
    const { deadline, skewMs } = taskDeadline(message.properties.headers, now, resolved.deadlineMs);
    if (skewMs > 1000 && now - lastSkewLog > 60_000) {
      lastSkewLog = now;
      log(
        'warn',
        "compute: a task arrived past its caller's deadline by this host's clock, within its time left: the clocks disagree",
        {
          skewMs,
        },
      );
    }
    if (now >= deadline) {
      counts.expired++;
      metrics.expired.inc();
      return from.channel.ack(message);
    }
    if (message.fields.redelivered) {
      counts.redelivered++;
      metrics.redelivered.inc();
      publish(CHANNELS.computeRedelivery, () => ({
        queue: resolved.queue,
        task: label(String(parseJson<TaskMessage>(message.content)?.task)),
      }));
      if (resolved.queueType === 'classic') {
        // A classic queue does not count deliveries: this service does, in a header of a copy of the task.
        const deliveries = deliveriesOf(header(message, DELIVERIES_HEADER), resolved.maxDeliveries) + 1;
        if (deliveries > resolved.maxDeliveries) return from.channel.nack(message, false, false);
        from.channel.sendToQueue(resolved.queue, message.content, {
          ...message.properties,
          headers: { ...message.properties.headers, [DELIVERIES_HEADER]: deliveries },
        });
        return from.channel.ack(message);
      }
    }
    const body = parseJson<TaskMessage>(message.content);
    if (body === null || typeof body.task !== 'string') {
      return answer(from, message, {
        ok: false,
        code: 'NS_ERR_COMPUTE_FAILED',
        message: 'the task message is not JSON { task, input }',
      });
    }
    const cancel = new AbortController();
    inHand.set(message, cancel);
    metrics.inFlight.set(inHand.size);
    const started = performance.now();
    try {
      const output = await runTask(body.task, body.input, deadline, cancel.signal);
      counts.completed++;
      metrics.tasks.inc({ task: label(body.task), outcome: 'ok' });
      answer(from, message, { ok: true, output });
    } catch (error) {
      if (cancel.signal.aborted) return; // cancelled with its lost channel: redelivered, counted where it runs
      counts.failed++;
      const code: ErrorCode = isNodescaleError(error) ? error.code : 'NS_ERR_COMPUTE_FAILED';
      metrics.tasks.inc({ task: label(body.task), outcome: code });
      answer(from, message, { ok: false, code, message: (error as Error).message });
    } finally {
      metrics.duration.observe({ task: label(body.task) }, (performance.now() - started) / 1000);
      release(message);
    }
  };

  /** Dead letters: poison is answered and parked; an expired task's caller gave up already. */
  const onDead = (from: Link) => (message: ConsumeMessage | null) => {
    if (message === null || link !== from) return;
    const reason = String(header(message, 'x-first-death-reason') ?? 'rejected');
    if (reason !== 'expired') {
      counts.deadLettered++;
      metrics.deadLettered.inc();
      const named = parseJson<TaskMessage>(message.content)?.task;
      const task = typeof named === 'string' ? named.slice(0, 200) : '(unreadable)';
      publish(CHANNELS.computeDeadLetter, () => ({ queue: resolved.queue, task: label(task) }));
      // Parked for people to look at: no expiry, and no reply address (nothing may answer from the parked queue).
      const { expiration: _expiration, replyTo: _replyTo, ...kept } = message.properties;
      from.channel.sendToQueue(parkedQueue(resolved.queue), message.content, kept);
      log('warn', 'compute: a poison task was dead-lettered and parked', {
        task,
        queue: parkedQueue(resolved.queue),
        reason,
      });
      answer(from, message, {
        ok: false,
        code: 'NS_ERR_COMPUTE_POISON',
        message: `task ${task} was delivered ${resolved.maxDeliveries} times without an answer (it kills or stalls the services that run it): it is parked in ${parkedQueue(resolved.queue)}`,
      });
      return;
    }
    // Expired in the queue: the broker dropped it unstarted, and its caller has timed out already.
    counts.expired++;
    metrics.expired.inc();
    from.channel.ack(message);
  };

  const lost = (from: Link, why: string) => {
    if (link !== from) return;
    link = null;
    options.onConsuming?.(false);
    log('warn', 'compute: lost the broker; reconnecting', { why, holding: inHand.size });
    // What it held is redelivered by the broker: running it on here would only hold threads for results that can
    // never be delivered (answer() checks the link), so it is cancelled; the pool replaces the threads it stops.
    for (const [message, cancel] of inHand) {
      cancel.abort(new Error('the channel it came on was lost'));
      inHand.delete(message);
    }
    metrics.inFlight.set(0);
    idle?.();
    if (!stopping) reconnect.schedule();
  };

  const open = async (): Promise<void> => {
    const connection = await nodes.open(resolved.tls);
    try {
      await setUpWithin(connection, nodes.current, async () => {
        const channel = await connection.createConfirmChannel();
        // 'close' follows (below); the broker's reason is what the log says.
        let reason = 'the channel was closed';
        channel.on('error', (error: Error) => (reason = `the channel was closed: ${error.message}`));
        const current: Link = { connection, channel, consumers: [], unconfirmed: new Map(), published: 0 };
        connection.on('close', (error?: Error & { code?: number }) => {
          if (error?.code === INTERNAL_ERROR) blame(current);
          lost(current, error?.message ?? 'closed');
        });
        // The broker closes a channel that broke a rule (an acknowledgement timeout): start again on a fresh
        // connection.
        channel.on('close', () => {
          // When the connection closes, its channels close first: its own reason, a moment later, is the better one.
          queueMicrotask(() => lost(current, reason));
          void closeConnection(connection);
        });
        await declareTopology(channel, resolved);
        await channel.prefetch(prefetch);
        link = current;
        const handle = onTask(current);
        current.consumers.push((await channel.consume(resolved.queue, (message) => void handle(message))).consumerTag);
        current.consumers.push((await channel.consume(deadQueue(resolved.queue), onDead(current))).consumerTag);
      });
      reconnect.succeeded();
      log('info', 'compute: consuming', {
        broker: redactUrl(nodes.current),
        queue: resolved.queue,
        prefetch,
        threads: resolved.threads,
      });
      options.onConsuming?.(true);
      for (const resolve of consumingWaiters) resolve();
      consumingWaiters = [];
    } catch (error) {
      await closeConnection(connection);
      throw error;
    }
  };

  const reconnect = reconnector(open, (error) => log('warn', 'compute: reconnection failed', { error: error.message }));

  try {
    await open();
  } catch (error) {
    await pool.close();
    throw error;
  }

  return {
    address: `${resolved.urls.map(redactUrl).join(',')}#${resolved.queue}`,
    get consuming() {
      return link !== null && !stopping;
    },
    registry,
    stats: () => ({
      consuming: link !== null && !stopping,
      inFlight: inHand.size,
      ...counts,
      broker: link === null ? null : redactUrl(nodes.current),
    }),
    whenConsuming: () =>
      link !== null ? Promise.resolve() : new Promise<void>((resolve) => consumingWaiters.push(resolve)),
    async stop() {
      stopping = true;
      reconnect.cancel();
      const current = link;
      if (current !== null) {
        // No new deliveries; what is held is finished, answered and acknowledged on this channel.
        // A broker that does not answer (frozen, or its host gone) does not hold stop(): after the close deadline the
        // tasks in hand are finished all the same, and the socket is destroyed.
        const cancelled = Promise.all(current.consumers.map((tag) => current.channel.cancel(tag).catch(() => {})));
        await Promise.race([cancelled, delay(AMQP_DEFAULTS.closeDeadlineMs, undefined, { ref: false })]);
        if (inHand.size > 0) await new Promise<void>((resolve) => (idle = resolve));
        link = null;
        await closeConnection(current.connection);
      }
      await pool.close();
    },
  };
}

/** The service module's contract (service.ts): compute-worker starts the amqp transport's services through it. */
export const startService: ServiceModule['startService'] = (options) =>
  startAmqpService(options as unknown as AmqpServiceOptions);
