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
 * A call is one persistent message: body JSON { task, input }; correlationId (random: a reply for a guessed id
 * cannot resolve another's call); replyTo (direct reply-to); `expiration`, the milliseconds left of its deadline (the
 * broker drops it when they run out), and the header x-nodescale-remaining-ms, the same milliseconds: the service sets
 * its deadline on receipt from them, so no two clocks need agree (the broker's TTL bounds the time in the queue). The
 * header x-nodescale-deadline (epoch ms) is sent too, for services of earlier versions, and used only to notice a
 * skewed clock. The reply is JSON { ok: true, output } or { ok: false, code, message }; every field of a message is
 * checked on receipt (parseReply, taskDeadline): a message from another process is untrusted input.
 */
import type { ChannelModel } from 'amqplib';
import { loadOptional } from '../optional-package.ts';
import { backoffDelay, type Backoff } from '../backoff.ts';
import { certificateHint, type ClientTls } from '../client-tls.ts';
import { ERROR_CODES, invalidOption, NodescaleError, type ErrorCode } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import { MAX_TIMER_MS } from '../units.ts';

export type QueueType = 'quorum' | 'classic';

export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
export const DEADLINE_HEADER = 'x-nodescale-deadline';
export const REMAINING_HEADER = 'x-nodescale-remaining-ms';
/** Classic queues count deliveries here (quorum queues count them themselves: x-delivery-count). */
export const DELIVERIES_HEADER = 'x-nodescale-deliveries';

export const AMQP_DEFAULTS = Object.freeze({
  queue: 'nodescale.compute',
  queueType: 'quorum',
  /** Deliveries of one task before it is dead-lettered as poison (a task that kills its service, again and again). */
  maxDeliveries: 5,
  /**
   * Tasks a compute service holds unacknowledged at once, per worker thread (its prefetch is this × its threads). Few:
   * a service that freezes keeps what it holds until the broker drops it (heartbeats), and the broker hands it new
   * tasks while it has room. Tasks of microseconds go faster with more (they share a thread hop): --prefetch.
   */
  prefetchPerThread: 4,
  /** Publisher confirms: a call counts as accepted once the broker has it. */
  confirm: true,
  /**
   * Heartbeat, seconds, asked of the broker unless the URL sets one: a peer that stops answering (frozen, SIGSTOP; a
   * dead host) is dropped after two missed beats, and what it held is redelivered, rather than after the broker's
   * 60 s default. A caller's connection beats too.
   */
  heartbeatSeconds: 5,
  /** Reconnection backoff. */
  reconnectInitialMs: 100,
  reconnectMaxMs: 5000,
  /** How long a closing connection waits for the broker's close-ok before its socket is destroyed. */
  closeDeadlineMs: 2000,
  /**
   * How long setting a new connection up (its channel, the queues declared or checked, the consumers) may take before
   * the connection is given up and the next attempt made: a broker that accepted the connection may still never
   * answer a declaration (a quorum queue electing its leader on a loaded machine), and amqplib waits for ever.
   */
  setupDeadlineMs: 10_000,
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

const MAX_REPLY_MESSAGE = 2000;

/**
 * A reply, checked: null when it is not one. A code this version does not know (a newer service's, in a rolling
 * upgrade) is NS_ERR_COMPUTE_FAILED with the code named in the message; a message that is not a string is replaced.
 */
export function parseReply(content: Buffer): ReplyMessage | null {
  const reply = parseJson<Record<string, unknown>>(content);
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply) || typeof reply.ok !== 'boolean') return null;
  if (reply.ok) return { ok: true, output: reply.output };
  const raw = typeof reply.message === 'string' ? reply.message.slice(0, MAX_REPLY_MESSAGE) : 'the task failed';
  const code = reply.code;
  if (typeof code === 'string' && Object.hasOwn(ERROR_CODES, code))
    return { ok: false, code: code as ErrorCode, message: raw };
  const named = typeof code === 'string' ? ` (${code.slice(0, 64)})` : '';
  return { ok: false, code: 'NS_ERR_COMPUTE_FAILED', message: `${raw}${named}` };
}

/**
 * When a delivered task's time is up, by this host's clock: receipt + the milliseconds the caller had left when it
 * sent it (clamped to what a timer can hold), else (a caller of an earlier version) its epoch deadline, else
 * receipt + `fallbackMs`. `skewMs`: how far past its epoch deadline the task arrived while its remaining time said it
 * was alive, a sign that the two clocks disagree (0 when they agree, or when it cannot be told).
 */
export function taskDeadline(
  headers: Record<string, unknown> | undefined,
  now: number,
  fallbackMs: number,
): { deadline: number; skewMs: number } {
  const remaining = Number(headers?.[REMAINING_HEADER]);
  const epoch = Number(headers?.[DEADLINE_HEADER]);
  if (Number.isFinite(remaining)) {
    const left = Math.min(MAX_TIMER_MS, Math.max(0, Math.floor(remaining)));
    const skewMs = Number.isFinite(epoch) && left > 0 && now > epoch ? now - epoch : 0;
    return { deadline: now + left, skewMs };
  }
  if (Number.isFinite(epoch)) return { deadline: Math.min(epoch, now + MAX_TIMER_MS), skewMs: 0 };
  return { deadline: now + Math.min(MAX_TIMER_MS, fallbackMs), skewMs: 0 };
}

/** The deliveries a classic queue's header counts, clamped: a forged one (negative, huge, not a number) counts as 1. */
export function deliveriesOf(value: unknown, maxDeliveries: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, maxDeliveries + 1) : 1;
}

/** Direct reply-to addresses only: a service never publishes into whatever queue a message names. */
export const isReplyAddress = (replyTo: unknown): replyTo is string =>
  typeof replyTo === 'string' && replyTo.startsWith(`${DIRECT_REPLY_TO}.`) && replyTo.length <= 255;

export function parseJson<T>(content: Buffer): T | null {
  try {
    return JSON.parse(content.toString('utf8')) as T;
  } catch {
    return null;
  }
}

/**
 * A cluster's node URLs: a list, or one string of URLs separated by commas (`amqp://…@a:5672,amqp://…@b:5672`, as
 * --broker and NODESCALE_BROKER_URL take them: a comma is split on only where a URL starts after it, so one inside a
 * password stays). 1 to 64 nodes, each checked as brokerUrl does, all amqp:// or all amqps://.
 */
export function brokerUrls(name: string, raw: unknown): string[] {
  const list = Array.isArray(raw)
    ? (raw as unknown[])
    : typeof raw === 'string'
      ? raw.split(/,(?=amqps?:\/\/)/)
      : [raw];
  if (list.length === 0 || list.length > 64)
    throw invalidOption(name, 'one broker URL, or a list of 1 to 64 (the nodes of a cluster)', list.length);
  const urls = list.map((entry) => brokerUrl(name, entry));
  if (new Set(urls.map((entry) => new URL(entry).protocol)).size > 1)
    throw invalidOption(name, 'nodes of one cluster, all amqp:// or all amqps://', urls.map(redactUrl).join(','));
  return urls;
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

/**
 * What a failed connection attempt means, as one of our errors: credentials refused (NS_ERR_BROKER_AUTH), a virtual
 * host refused (NS_ERR_BROKER_VHOST: the URL is wrong, retrying will not help), a certificate (with what to give),
 * else unavailable (retryable). The broker refuses a virtual host by closing the connection in answer to
 * connection.open (RabbitMQ: 530 NOT_ALLOWED, "vhost … not found" or "access to vhost … refused"); amqplib keeps only
 * "Expected ConnectionOpenOk; got <ConnectionClose …>", without the broker's text, so that frame is what is matched.
 */
export function connectError(url: string, error: unknown): NodescaleError {
  const message = (error as Error).message ?? String(error);
  const at = `cannot connect to the broker at ${redactUrl(url)}`;
  if (/NOT_ALLOWED|Expected ConnectionOpenOk; got <ConnectionClose/.test(message)) {
    const path = URL.canParse(url) ? new URL(url).pathname.slice(1) : '';
    const vhost = path === '' ? '/' : decodeURIComponent(path);
    return new NodescaleError(
      'NS_ERR_BROKER_VHOST',
      `${at}: it refused the virtual host ${JSON.stringify(vhost)}: it has none of that name, or the user may not use ` +
        `it (the URL's path names it; none, or %2F, is the default "/")`,
      { cause: error },
    );
  }
  // A certificate refused either way is told first: OpenSSL's message carries addresses and source line numbers
  // (…rec_layer_s3.c:1403…), in which a bare "403" would be found by chance.
  const hint = certificateHint(error, '--broker', 'tls');
  if (hint !== undefined) return new NodescaleError('NS_ERR_COMPUTE_UNAVAILABLE', `${at}: ${hint}`, { cause: error });
  // amqplib's words for the broker's refusal: "Handshake terminated by server: 403 (ACCESS-REFUSED) …".
  const refused = /\bACCESS[_-]REFUSED\b|terminated by server: 403\b/.test(message);
  if (refused) return new NodescaleError('NS_ERR_BROKER_AUTH', `${at}: the credentials were refused`, { cause: error });
  // Something else answered: amqplib reads the first bytes of its answer as a frame, and an HTTP server's
  // "HTTP/1.1 …" is a frame too large ("Frame size 1345270062 exceeds …": 0x502F312E is "P/1."). A proxy of this
  // machine's or a web server at that address, not RabbitMQ.
  const frame = /^Frame size (\d+) exceeds/.exec(message);
  if (frame !== null) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(Number(frame[1]) >>> 0);
    const text = bytes.toString('latin1');
    const what =
      text === 'P/1.' || text === 'P/2.' ? 'HTTP (a web server, or an HTTP proxy in the way)' : 'something not AMQP';
    return new NodescaleError(
      'NS_ERR_COMPUTE_UNAVAILABLE',
      `${at}: what answered there speaks ${what}, not RabbitMQ: check the address and port`,
      { cause: error },
    );
  }
  return new NodescaleError('NS_ERR_COMPUTE_UNAVAILABLE', `${at}: ${message}`, { cause: error });
}

/** One connection attempt, with Nagle off (it holds RPC round trips at ~40/s), a connect timeout, and `tls` if any. */
export async function openConnection(url: string, tls?: ClientTls): Promise<ChannelModel> {
  // Loaded on first use: the pool and inline transports never load the AMQP client, and @nodescale/compute's users
  // install it only when they use RabbitMQ.
  const { connect } = await loadOptional('amqplib', "compute's amqp transport", () => import('amqplib'));
  try {
    const connection = await connect(withHeartbeat(url), {
      noDelay: true,
      timeout: 5000,
      clientProperties: { connection_name: `nodescale ${process.pid}` },
      ...tls,
    });
    // From the first moment: an 'error' without a listener would throw; 'close' follows it, with the reason.
    connection.on('error', () => {});
    return connection;
  } catch (error) {
    throw connectError(url, error);
  }
}

/** The connection's socket destroyed: its channels close, and amqplib fails the operations they wait for. */
function destroySocket(connection: ChannelModel): void {
  // ChannelModel.connection is amqplib's Connection; its stream is the socket (net or tls).
  const stream = (connection as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  stream?.destroy?.();
}

/**
 * Runs `setup` on a new connection within `deadlineMs`: past it the socket is destroyed, which fails what `setup`
 * waits for, and the error says why (NS_ERR_COMPUTE_UNAVAILABLE, retryable: the next attempt goes to another node).
 */
export async function setUpWithin<T>(
  connection: ChannelModel,
  url: string,
  setup: () => Promise<T>,
  deadlineMs = AMQP_DEFAULTS.setupDeadlineMs,
): Promise<T> {
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    destroySocket(connection);
  }, deadlineMs);
  try {
    return await setup();
  } catch (error) {
    if (!late) throw error;
    throw new NodescaleError(
      'NS_ERR_COMPUTE_UNAVAILABLE',
      `the broker at ${redactUrl(url)} accepted the connection but did not finish setting it up within ${deadlineMs} ms`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes a connection politely (connection.close, the broker answers close-ok), or, when no answer comes within
 * `deadlineMs` (the broker is frozen, or its host is gone: amqplib waits for close-ok without end), destroys the
 * socket. Never throws.
 */
export async function closeConnection(
  connection: ChannelModel,
  deadlineMs = AMQP_DEFAULTS.closeDeadlineMs,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, deadlineMs, 'late')));
  const closed = connection.close().then(
    () => 'closed' as const,
    () => 'closed' as const,
  );
  if ((await Promise.race([closed, late])) === 'late') destroySocket(connection);
  clearTimeout(timer);
}

/**
 * The nodes of a cluster (or one broker), and which to connect to: the first that answers, starting at a random node
 * (so callers spread over the cluster), and after a lost connection at the node after the one it was on (that one
 * may be the node that died). Every node refusing: the last node's error.
 */
export class BrokerNodes {
  readonly #urls: readonly string[];
  #next: number;
  /** The node of the last connection opened (the first node until then). */
  current: string;

  constructor(urls: readonly string[]) {
    this.#urls = urls;
    this.#next = Math.floor(Math.random() * urls.length);
    this.current = urls[0]!;
  }

  async open(tls?: ClientTls): Promise<ChannelModel> {
    const failures: NodescaleError[] = [];
    for (let i = 0; i < this.#urls.length; i++) {
      const index = (this.#next + i) % this.#urls.length;
      try {
        const connection = await openConnection(this.#urls[index]!, tls);
        this.#next = (index + 1) % this.#urls.length;
        this.current = this.#urls[index]!;
        return connection;
      } catch (error) {
        failures.push(error as NodescaleError);
      }
    }
    if (failures.length === 1) throw failures[0]!;
    // Every node refused: one error that says what each said; its code is theirs when they agree (the credentials
    // refused by all), else unavailable (retryable).
    const codes = new Set(failures.map((failure) => failure.code));
    const code = codes.size === 1 ? failures[0]!.code : 'NS_ERR_COMPUTE_UNAVAILABLE';
    const each = failures.map((failure) => failure.message.replace(/^cannot connect to the broker at /, ''));
    throw new NodescaleError(code, `cannot connect to any of the ${failures.length} broker nodes: ${each.join('; ')}`, {
      cause: failures.at(-1),
    });
  }
}

/** The URL with `heartbeat` set to the default unless it sets one. */
function withHeartbeat(raw: string): string {
  const url = new URL(raw);
  if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(AMQP_DEFAULTS.heartbeatSeconds));
  return url.href;
}

const RECONNECT: Backoff = { initialMs: AMQP_DEFAULTS.reconnectInitialMs, maxMs: AMQP_DEFAULTS.reconnectMaxMs };

/**
 * Reconnection, for both sides: `schedule()` tries `open` after a backoff with jitter, again and again until it
 * succeeds (`onFailure` hears each failure); `succeeded()` starts the backoff over; `cancel()` stops trying. A caller's
 * timer is unref'd (`unref`): reconnecting alone does not keep an API process alive.
 *
 * Why not amqplib 2.3's own recovery (`connect(url, { recovery })`): while it is disconnected, channel operations wait
 * for the next connection inside amqplib, and a caller must fail fast instead (NS_ERR_COMPUTE_UNAVAILABLE, retryable,
 * at once: a call that waits for a broker that may not come back holds its request to its deadline). And what a
 * reconnection must redo is ours either way: direct reply-to is bound to one connection, so each call in flight fails
 * or, idempotent, is sent again once; a service cancels what it held (the broker redelivers it) and consumes again.
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
    timer = setTimeout(
      () => {
        timer = null;
        open().catch((error: Error) => {
          onFailure(error);
          schedule();
        });
      },
      backoffDelay(RECONNECT, ++attempt),
    );
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
