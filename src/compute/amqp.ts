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
 *   idempotent, are sent again once when the connection is back. New calls are refused with it while disconnected.
 *   The caller reconnects with backoff and jitter and declares its queues again; nothing needs a restart.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { NodescaleError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import type { ResolvedAmqpOptions } from './amqp-options.ts';
import {
  DEADLINE_HEADER,
  declareTopology,
  DIRECT_REPLY_TO,
  BrokerNodes,
  closeConnection,
  setUpWithin,
  parseReply,
  queueExists,
  reconnector,
  REMAINING_HEADER,
} from './amqp-wire.ts';
import { abortError, callSignal, type CallSignal } from './call.ts';
import type { CallOptions, Compute, ComputeStats, ResolvedCommonOptions } from './contract.ts';

type Options = ResolvedCommonOptions & ResolvedAmqpOptions;

interface Link {
  connection: ChannelModel;
  /** A confirm channel with publisher confirms on, else a plain one. */
  channel: ConfirmChannel | Channel;
  /** Set as the channel closes, before amqplib fails its unconfirmed publishes: a failed confirm is not a nack. */
  closing: boolean;
  /** The broker has confirmed a publish on this link: it takes tasks through it. */
  acked: boolean;
  /** Nacks and no ack yet on this link: the connection is opened again when this fires (see #onConfirm). */
  suspect: NodeJS.Timeout | null;
}

/**
 * How long a new connection may see only nacks before it is opened again. RabbitMQ 3.10 gives a channel's first
 * publish to a quorum queue the leader named in the queue's record; if that node is down (a publisher reconnected
 * just after its node died), the channel nacks every publish for as long as it lives (rabbit_fifo_client's first
 * enqueue: `{badrpc, nodedown} -> {reject_publish, State0}`, the state unchanged). A new channel reads the record
 * again, which names the new leader once it is elected.
 */
const SUSPECT_NACKS_MS = 1_000;
/** Connections opened again, one after the other, for their nacks wait twice as long each time, up to this. */
const SUSPECT_NACKS_MAX_MS = 30_000;

/** One call in flight: what answers it, and how it is (re)published. */
interface Call {
  readonly id: string;
  readonly task: string;
  readonly body: Buffer;
  /** This host's clock, for the time left on the wire (never sent as such: REMAINING_HEADER is). */
  readonly deadlineAt: number;
  /** An idempotent call may be sent twice: as a hedge, and once on the next connection when its own is lost. */
  readonly idempotent: boolean;
  /** Idempotent and not sent again on a new connection yet (after its own was lost with it in flight). */
  resendable: boolean;
  /** Idempotent and not held after a nack yet (a budget of its own: a nacked call is one the broker never took). */
  holdableAfterNack: boolean;
  /** Waiting for the next connection to be sent again, and why. */
  awaitingResend: 'lost' | 'nacked' | null;
  readonly signal: CallSignal;
  hedge: NodeJS.Timeout | null;
  resolve(output: unknown): void;
  reject(error: Error): void;
}

export async function createAmqpCompute(options: Options): Promise<Compute> {
  const compute = new AmqpCompute(options);
  // The first connection is made now: a bad URL, refused credentials or a broker that is not there fail createCompute.
  await compute.connect();
  return compute;
}

class AmqpCompute implements Compute {
  readonly transport = 'amqp';
  readonly #options: Options;
  readonly #calls = new Map<string, Call>();
  readonly #reconnect: ReturnType<typeof reconnector>;
  readonly #nodes: BrokerNodes;
  #link: Link | null = null;
  #blocked = false;
  #closed = false;
  #completed = 0;
  #failed = 0;
  #connections = 0;
  /** Connections opened again in a row because they had only nacks (#onConfirm). */
  #suspectReopened = 0;
  /** Resolves once no call is in flight (close() waits for it). */
  #drained: { promise: Promise<void>; resolve(): void } | null = null;

  constructor(options: Options) {
    this.#options = options;
    this.#nodes = new BrokerNodes(options.urls);
    this.#reconnect = reconnector(
      () => this.connect(),
      () => {},
      { unref: true },
    );
  }

  async call<O>(task: string, input: unknown, callOptions: CallOptions = {}): Promise<O> {
    if (this.#closed) throw new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute client is closed');
    const link = this.#link;
    if (link === null) throw this.#unavailable('reconnecting');
    if (this.#blocked)
      throw new NodescaleError(
        'NS_ERR_COMPUTE_QUEUE_FULL',
        'the broker is blocking publishers (flow control: memory or disk alarm)',
      );
    const { maxQueue } = this.#options;
    if (this.#calls.size >= maxQueue)
      throw new NodescaleError('NS_ERR_COMPUTE_QUEUE_FULL', `${maxQueue} calls are in flight already (maxQueue)`);
    const deadlineMs = callOptions.deadlineMs ?? this.#options.deadlineMs;
    const signal = callSignal(callOptions, deadlineMs);
    try {
      return (await new Promise<unknown>((resolve, reject) => {
        if (signal.signal.aborted) return reject(abortError(task, signal.signal, deadlineMs));
        const call: Call = {
          id: randomUUID(),
          task,
          body: Buffer.from(JSON.stringify({ task, input })),
          deadlineAt: Date.now() + deadlineMs,
          idempotent: callOptions.idempotent === true,
          resendable: callOptions.idempotent === true,
          holdableAfterNack: callOptions.idempotent === true,
          awaitingResend: null,
          signal,
          hedge: null,
          resolve,
          reject,
        };
        this.#calls.set(call.id, call);
        signal.signal.addEventListener('abort', () => this.#settle(call, abortError(task, signal.signal, deadlineMs)), {
          once: true,
        });
        this.#send(call, link);
        // A hedge: past hedgeAfter of its deadline with no answer, an idempotent call is published once more (a
        // service that froze holding it keeps the first copy; another takes this one). The first answer wins.
        if (call.idempotent && this.#options.hedgeAfter < 1) {
          call.hedge = setTimeout(() => {
            if (this.#calls.has(call.id) && this.#link !== null && !this.#blocked) this.#send(call, this.#link);
          }, deadlineMs * this.#options.hedgeAfter);
          call.hedge.unref();
        }
      })) as O;
    } catch (error) {
      this.#failed++;
      throw error;
    } finally {
      signal.dispose();
      this.#completed++;
    }
  }

  stats(): ComputeStats {
    return {
      transport: 'amqp',
      threads: 0,
      queued: this.#calls.size,
      completed: this.#completed - this.#failed,
      failed: this.#failed,
      broker: this.#link === null ? null : redactUrl(this.#nodes.current),
      connections: this.#connections,
      awaitingResend: [...this.#calls.values()].filter((call) => call.awaitingResend !== null).length,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#reconnect.cancel();
    // Idempotent calls waiting for a connection that will not come back now.
    if (this.#link === null)
      for (const call of this.#calls.values())
        this.#settle(call, new NodescaleError('NS_ERR_COMPUTE_CLOSED', 'the compute client was closed'));
    // Calls in flight get their answers first (or their deadlines), then the connection goes.
    if (this.#calls.size > 0) await (this.#drained ??= Promise.withResolvers<void>()).promise;
    const link = this.#link;
    this.#link = null;
    if (link !== null) await closeConnection(link.connection);
  }

  /** Opens a connection and its channel, declares the queues if they are missing, and sends what waits for it. */
  async connect(): Promise<void> {
    const { tls, confirm, queue, queueType, maxDeliveries } = this.#options;
    const connection = await this.#nodes.open(tls);
    try {
      const channel = await setUpWithin(connection, this.#nodes.current, async () => {
        const opened = confirm ? await connection.createConfirmChannel() : await connection.createChannel();
        opened.on('error', () => {}); // 'close' follows, and closes the connection (below)
        // The services own the queues' settings: a caller declares them only when they do not exist yet.
        if (!(await queueExists(connection, queue))) await declareTopology(opened, { queue, queueType, maxDeliveries });
        await opened.consume(DIRECT_REPLY_TO, (message) => this.#onReply(message), { noAck: true });
        return opened;
      });
      const link: Link = { connection, channel, closing: false, acked: false, suspect: null };
      // Before amqplib's own listener, which fails the publishes still unconfirmed (onConfirm tells them from nacks).
      channel.prependListener('close', () => (link.closing = true));
      connection.on('close', (error?: Error) => {
        if (link.suspect !== null) clearTimeout(link.suspect);
        this.#lost(link, error?.message ?? 'closed');
      });
      connection.on('blocked', (reason?: string) => {
        this.#blocked = true;
        // The broker blocks every publisher on the connection, the services' replies included: calls in flight would
        // hang to their deadlines. They fail now, with the retryable code, as new calls do.
        const error = this.#unavailable(
          `the broker is blocking publishers (${reason ?? 'flow control'}) with the call in flight`,
        );
        for (const call of this.#calls.values()) this.#settle(call, error);
      });
      connection.on('unblocked', () => (this.#blocked = false));
      // A channel closed by the broker (a precondition failed): the connection is closed too, and reopened whole.
      channel.on('close', () => void closeConnection(connection));
      this.#link = link;
      this.#connections++;
      this.#reconnect.succeeded();
      this.#resendHeld(link);
    } catch (error) {
      await closeConnection(connection);
      throw error;
    }
  }

  #send(call: Call, link: Link): void {
    const left = Math.max(1, call.deadlineAt - Date.now());
    const properties: Options.Publish = {
      persistent: true,
      contentType: 'application/json',
      correlationId: call.id,
      replyTo: DIRECT_REPLY_TO,
      expiration: String(left),
      headers: { [REMAINING_HEADER]: left, [DEADLINE_HEADER]: call.deadlineAt },
    };
    const { queue } = this.#options;
    if (this.#options.confirm)
      (link.channel as ConfirmChannel).sendToQueue(queue, call.body, properties, (error: unknown) =>
        this.#onConfirm(call, link, error),
      );
    else link.channel.sendToQueue(queue, call.body, properties);
  }

  /**
   * A publisher confirm. An ack: nothing to do. A nack: the broker refused the task (a queue length limit) — or, on a
   * connection that never had an ack, a channel that can never publish (SUSPECT_NACKS_MS): that connection is opened
   * again if no ack comes within SUSPECT_NACKS_MS, and its nacked idempotent calls wait for the next one, once (the
   * broker took none of them). Other nacked calls fail at once.
   */
  #onConfirm(call: Call, link: Link, error: unknown): void {
    if (error === null || error === undefined) return this.#onAck(link);
    if (!this.#calls.has(call.id)) return;
    // Failed because the channel closed (lost() decides what becomes of the call), or nacked while it was open.
    if (link.closing) {
      if (call.resendable && !this.#closed) return; // it is sent again on the next connection
      return this.#settle(call, this.#unavailable('the connection was lost before the broker confirmed the call'));
    }
    if (!link.acked) {
      // A queue that is really full nacks on every connection: then they are opened again less and less often.
      const waitMs = Math.min(SUSPECT_NACKS_MS * 2 ** this.#suspectReopened, SUSPECT_NACKS_MAX_MS);
      link.suspect ??= setTimeout(() => {
        link.suspect = null;
        if (link.acked || this.#link !== link) return;
        this.#suspectReopened++;
        void closeConnection(link.connection);
      }, waitMs).unref();
      if (call.holdableAfterNack && !this.#closed) {
        call.holdableAfterNack = false;
        call.awaitingResend = 'nacked';
        return;
      }
    }
    this.#settle(call, new NodescaleError('NS_ERR_COMPUTE_QUEUE_FULL', `the broker refused task ${call.task} (nack)`));
  }

  /** The first ack on a link: it takes tasks; the calls held after its nacks (#onConfirm) are sent on it, once. */
  #onAck(link: Link): void {
    if (link.acked) return;
    link.acked = true;
    this.#suspectReopened = 0;
    if (link.suspect === null) return;
    clearTimeout(link.suspect);
    link.suspect = null;
    if (link.closing || this.#link !== link) return;
    this.#resendHeld(link);
  }

  /** Sends, once more, the calls that wait for a connection. */
  #resendHeld(link: Link): void {
    for (const call of this.#calls.values()) {
      if (call.awaitingResend === null) continue;
      if (call.awaitingResend === 'lost') call.resendable = false;
      call.awaitingResend = null;
      this.#send(call, link);
    }
  }

  #onReply(message: ConsumeMessage | null): void {
    if (message === null) return; // the broker cancelled the consumer: the channel closes next, and is reopened
    const id: unknown = message.properties.correlationId;
    const call = typeof id === 'string' ? this.#calls.get(id) : undefined;
    if (call === undefined) return; // a late or duplicate reply: its call has ended
    const reply = parseReply(message.content);
    if (reply === null)
      return this.#settle(
        call,
        new NodescaleError('NS_ERR_COMPUTE_FAILED', `task ${call.task}: a reply that is not one`),
      );
    if (reply.ok) return this.#settle(call, null, reply.output);
    this.#settle(
      call,
      // Not the code's own retryable: a timeout a service reports means its task used its time there (trying the
      // same call again would take as long); only a full or unreachable service says "again, later".
      new NodescaleError(reply.code, reply.message, {
        retryable: reply.code === 'NS_ERR_COMPUTE_QUEUE_FULL' || reply.code === 'NS_ERR_COMPUTE_UNAVAILABLE',
      }),
    );
  }

  /** The connection is gone: idempotent calls wait for the next one (their deadlines still run), the others fail. */
  #lost(link: Link, why: string): void {
    if (this.#link !== link) return;
    this.#link = null;
    this.#blocked = false;
    const error = this.#unavailable(`the connection was lost (${why}) with the call in flight`);
    for (const call of this.#calls.values()) {
      if (call.awaitingResend === 'nacked' && !this.#closed) continue; // the broker never had it
      if (call.resendable && !this.#closed) call.awaitingResend = 'lost';
      else this.#settle(call, error);
    }
    if (!this.#closed) this.#reconnect.schedule();
  }

  /** Ends a call, once: with its error, or its output. */
  #settle(call: Call, error: Error | null, output?: unknown): void {
    if (!this.#calls.delete(call.id)) return;
    if (call.hedge !== null) clearTimeout(call.hedge);
    if (error === null) call.resolve(output);
    else call.reject(error);
    if (this.#calls.size === 0) this.#drained?.resolve();
  }

  #unavailable(why: string): NodescaleError {
    return new NodescaleError(
      'NS_ERR_COMPUTE_UNAVAILABLE',
      `the compute broker at ${redactUrl(this.#options.url)} is unavailable: ${why}`,
    );
  }
}
