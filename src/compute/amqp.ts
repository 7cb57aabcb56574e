/**
 * The amqp transport, caller's side: `createCompute({ transport: 'amqp', url, queue })`. Tasks go to a queue on a
 * RabbitMQ broker; compute services (`nodescale compute-worker`, amqp-service.ts) on any machine run them and reply.
 * The broker does the queueing, persistence and redelivery; this file does the RPC semantics (docs/compute.md):
 *
 * - **One answer per call.** Replies come over direct reply-to, matched by a random correlation id; a reply whose
 *   call has ended (its deadline passed, a duplicate after a redelivery, the loser of a hedge) finds no call and is
 *   dropped. Every reply is checked (amqp-wire.ts parseReply): a malformed one fails its call, never this process.
 * - **A frozen service does not keep a call.** A call declared idempotent that has no answer after `hedgeAfter` of
 *   its deadline (half, by default) is published once more: another service takes the copy, the first answer wins.
 *   Heartbeats (5 s) make the broker drop a frozen service's connection and redeliver what it held.
 * - **Deadlines cross the wire** (amqp-wire.ts): the broker drops a task whose time ran out, a service never starts
 *   one; the caller rejects with NS_ERR_COMPUTE_TIMEOUT at the deadline whatever the broker does.
 * - **Backpressure at once.** With publisher confirms (the default) a call is accepted when the broker has it; a nack
 *   is NS_ERR_COMPUTE_QUEUE_FULL. So are more than `maxQueue` calls in flight, and broker flow control
 *   (connection.blocked): refused at once, never queued in this process without bound. When the broker blocks, the
 *   calls in flight fail at once with NS_ERR_COMPUTE_UNAVAILABLE (retryable): it blocks the services' replies too.
 * - **The broker may restart.** Calls in flight when the connection goes fail at once with NS_ERR_COMPUTE_UNAVAILABLE
 *   (retryable): their replies cannot reach this connection any more (direct reply-to is bound to it) — or, declared
 *   idempotent, are sent again once when the connection is back. New calls are refused with it while disconnected. The caller reconnects with backoff and jitter and declares its queues again;
 *   nothing needs a restart.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { NodescaleError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import {
  AMQP_DEFAULTS,
  DEADLINE_HEADER,
  declareTopology,
  DIRECT_REPLY_TO,
  openConnection,
  parseReply,
  queueExists,
  reconnector,
  REMAINING_HEADER,
  type Topology,
} from './amqp-wire.ts';
import { abortError, callSignal, type CallOptions, type Compute, type ResolvedComputeOptions } from './compute.ts';

interface Pending {
  task: string;
  resolve(output: unknown): void;
  reject(error: Error): void;
  /** An idempotent call not sent again yet: what sends it on the next connection. */
  resend: ((link: Link) => void) | null;
}

interface Link {
  connection: ChannelModel;
  /** A confirm channel with publisher confirms on, else a plain one. */
  channel: ConfirmChannel | Channel;
}

export async function createAmqpCompute(options: ResolvedComputeOptions): Promise<Compute> {
  const url = options.url!;
  const topology: Topology = {
    queue: options.queue,
    queueType: options.queueType,
    maxDeliveries: options.maxDeliveries,
  };
  const pending = new Map<string, Pending>();
  let link: Link | null = null;
  let blocked = false;
  let closed = false;
  let completed = 0;
  let failed = 0;

  const unavailable = (why: string) =>
    new NodescaleError('NS_ERR_COMPUTE_UNAVAILABLE', `the compute broker at ${redactUrl(url)} is unavailable: ${why}`, {
      retryable: true,
    });

  const onReply = (message: ConsumeMessage | null) => {
    if (message === null) return; // the broker cancelled the consumer: the channel closes next, and is reopened
    const id: unknown = message.properties.correlationId;
    const call = typeof id === 'string' ? pending.get(id) : undefined;
    if (call === undefined) return; // a late or duplicate reply: its call has ended
    pending.delete(id as string);
    const reply = parseReply(message.content);
    if (reply === null)
      return call.reject(new NodescaleError('NS_ERR_COMPUTE_FAILED', `task ${call.task}: a reply that is not one`));
    if (reply.ok) return call.resolve(reply.output);
    call.reject(
      new NodescaleError(reply.code, reply.message, {
        retryable: reply.code === 'NS_ERR_COMPUTE_QUEUE_FULL' || reply.code === 'NS_ERR_COMPUTE_UNAVAILABLE',
      }),
    );
  };

  /** Fails every call in flight (the broker blocks: no reply can come until it unblocks). */
  const failPending = (error: NodescaleError) => {
    for (const [id, call] of pending) {
      pending.delete(id);
      call.reject(error);
    }
  };

  const lost = (why: string) => {
    if (link === null) return;
    link = null;
    blocked = false;
    const error = unavailable(`the connection was lost (${why}) with the call in flight`);
    // Idempotent calls wait for the next connection (their deadlines still run); the others fail now.
    for (const [id, call] of pending) {
      if (call.resend !== null && !closed) continue;
      pending.delete(id);
      call.reject(error);
    }
    if (!closed) reconnect.schedule();
  };

  const open = async (): Promise<void> => {
    const connection = await openConnection(url, options.tls);
    try {
      const channel = options.confirm ? await connection.createConfirmChannel() : await connection.createChannel();
      channel.on('error', () => {}); // 'close' follows, and closes the connection (below)
      // The services own the queues' settings: a caller declares them only when they do not exist yet.
      if (!(await queueExists(connection, topology.queue))) await declareTopology(channel, topology);
      await channel.consume(DIRECT_REPLY_TO, onReply, { noAck: true });
      connection.on('close', (error?: Error) => lost(error?.message ?? 'closed'));
      connection.on('blocked', (reason?: string) => {
        blocked = true;
        // The broker blocks every publisher on the connection, the services' replies included: calls in flight would
        // hang to their deadlines. They fail now, with the retryable code, as new calls do.
        failPending(
          unavailable(`the broker is blocking publishers (${reason ?? 'flow control'}) with the call in flight`),
        );
      });
      connection.on('unblocked', () => (blocked = false));
      // A channel closed by the broker (a precondition failed): the connection is closed too, and reopened whole.
      channel.on('close', () => void connection.close().catch(() => {}));
      const current: Link = { connection, channel };
      link = current;
      reconnect.succeeded();
      for (const call of pending.values()) {
        const resend = call.resend;
        call.resend = null;
        resend?.(current);
      }
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
  };

  const reconnect = reconnector(open, () => {}, { unref: true });

  // The first connection is made now: a bad URL, refused credentials or a broker that is not there fail createCompute.
  await open();

  return {
    transport: 'amqp',
    async call<O>(task: string, input: unknown, callOptions: CallOptions = {}): Promise<O> {
      if (closed) throw new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute client is closed');
      const current = link;
      if (current === null) throw unavailable('reconnecting');
      if (blocked)
        throw new NodescaleError(
          'NS_ERR_COMPUTE_QUEUE_FULL',
          'the broker is blocking publishers (flow control: memory or disk alarm)',
          { retryable: true },
        );
      if (pending.size >= options.maxQueue) {
        throw new NodescaleError(
          'NS_ERR_COMPUTE_QUEUE_FULL',
          `${options.maxQueue} calls are in flight already (maxQueue)`,
          { retryable: true },
        );
      }
      const deadlineMs = callOptions.deadlineMs ?? options.deadlineMs;
      const { signal, dispose } = callSignal(callOptions, deadlineMs);
      const id = randomUUID();
      const body = Buffer.from(JSON.stringify({ task, input }));
      try {
        return (await new Promise<unknown>((resolve, reject) => {
          const onAbort = () => {
            pending.delete(id);
            reject(abortError(task, signal, deadlineMs));
          };
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
          const settle =
            <A extends unknown[]>(fn: (...args: A) => void) =>
            (...args: A) => {
              signal.removeEventListener('abort', onAbort);
              fn(...args);
            };
          const deadlineAt = Date.now() + deadlineMs;
          const send = (target: Link) => {
            const left = Math.max(1, deadlineAt - Date.now());
            const properties = {
              persistent: true,
              contentType: 'application/json',
              correlationId: id,
              replyTo: DIRECT_REPLY_TO,
              expiration: String(left),
              headers: { [REMAINING_HEADER]: left, [DEADLINE_HEADER]: deadlineAt },
            };
            if (options.confirm)
              (target.channel as ConfirmChannel).sendToQueue(options.queue, body, properties, onConfirm);
            else target.channel.sendToQueue(options.queue, body, properties);
          };
          pending.set(id, {
            task,
            resolve: settle(resolve),
            reject: settle(reject),
            resend: callOptions.idempotent === true ? send : null,
          });
          const onConfirm = (error: unknown) => {
            if (error === null || error === undefined || !pending.has(id)) return;
            // A nack is the broker refusing the task (a queue length limit); any other error is the channel closing.
            const nacked = (error as Error).message === 'message nacked';
            if (!nacked && pending.get(id)!.resend !== null) return; // it is sent again on the next connection
            pending.get(id)!.reject(
              nacked
                ? new NodescaleError('NS_ERR_COMPUTE_QUEUE_FULL', `the broker refused task ${task} (nack)`, {
                    retryable: true,
                  })
                : unavailable('the connection was lost before the broker confirmed the call'),
            );
            pending.delete(id);
          };
          send(current);
          // A hedge: past hedgeAfter of its deadline with no answer, an idempotent call is published once more (a
          // service that froze holding it keeps the first copy; another takes this one). The first answer wins.
          if (callOptions.idempotent === true && options.hedgeAfter < 1) {
            const hedge = setTimeout(() => {
              if (pending.has(id) && link !== null && !blocked) send(link);
            }, deadlineMs * options.hedgeAfter);
            hedge.unref();
            signal.addEventListener('abort', () => clearTimeout(hedge), { once: true });
            const clear = pending.get(id)!;
            const { resolve: done, reject: failed } = clear;
            clear.resolve = (output) => (clearTimeout(hedge), done(output));
            clear.reject = (error) => (clearTimeout(hedge), failed(error));
          }
        })) as O;
      } catch (error) {
        failed++;
        throw error;
      } finally {
        dispose();
        completed++;
      }
    },
    stats: () => ({ transport: 'amqp', threads: 0, queued: pending.size, completed: completed - failed, failed }),
    async close() {
      closed = true;
      reconnect.cancel();
      if (link === null) {
        // Idempotent calls waiting for a connection that will not come back now.
        for (const call of pending.values())
          call.reject(new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute client was closed'));
        pending.clear();
      }
      // Calls in flight get their answers first (or their deadlines), then the connection goes.
      while (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const current = link;
      link = null;
      await current?.connection.close().catch(() => {});
    },
  };
}

export { AMQP_DEFAULTS };
