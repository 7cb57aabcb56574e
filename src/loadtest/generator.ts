/**
 * One thread's load generator: a set of keep-alive connections that send a pre-encoded request and frame the
 * responses, in the closed model (each connection keeps `pipelining` requests in flight) or the open model (requests
 * leave at a constant rate, and latency is measured from each one's intended send time, so a stalled target shows in
 * the tail instead of silently slowing the generator down: coordinated omission, corrected as wrk2 does).
 *
 * This file is the hot path of `nodescale bench`: reads land in one reused buffer per connection (`onread`), a batch
 * of responses is answered with one write, and nothing is allocated per request. It is longer than most files
 * because the connection and the generator share that path's state; split, every request would cross a module.
 */
import net from 'node:net';
import tls from 'node:tls';
import { CHANNELS } from '../diagnostics.ts';
import { channel } from 'node:diagnostics_channel';
import { createLatencyHistogram, recordMicros, type Histogram } from './histogram.ts';
import type { TlsPlan } from './options.ts';
import { RequestPicker, type RequestSetPlan } from './request-set.ts';
import { ParseError, ResponseFramer } from './response-framer.ts';

export interface GeneratorPlan {
  host: string;
  port: number;
  /** What to send. */
  requests: RequestSetPlan;
  /** This generator's thread among `threads`: they interleave the request sequence. */
  thread: number;
  threads: number;
  /** null: plain TCP. */
  tls: TlsPlan | null;
  connections: number;
  pipelining: number;
  /** Measured duration in ms, or null when `amount` bounds the run. */
  durationMs: number | null;
  /** Requests to complete, or null when `durationMs` bounds the run. */
  amount: number | null;
  warmupMs: number;
  /** Requests per second for the open model, or null for the closed model. */
  rate: number | null;
  timeoutMs: number;
}

export interface ErrorCounts {
  /** A connection could not be made (refused, unreachable, DNS). */
  connect: number;
  /** A connection was reset or closed with requests in flight: each lost request counts once. */
  reset: number;
  /** A request had no response within the timeout. */
  timeout: number;
  /** The bytes received were not an HTTP/1.1 response. */
  parse: number;
  /** The TLS handshake failed (the certificate was refused, no common protocol or cipher). */
  tls: number;
}

/** Results of the requests of one name (a requests file that names its requests). */
export interface KindCounters {
  completed: number;
  /** Count per status code, index = code. */
  statusCodes: number[];
}

export interface GeneratorCounters {
  completed: number;
  sent: number;
  bytes: number;
  /** Count per status code, index = code. */
  statusCodes: number[];
  errors: ErrorCounts;
  /** Open model: requests that left more than LATE_MS after their intended time, or never left before the end. */
  notSentOnTime: number;
  /** Per request name (index = name's), empty when the requests have none. */
  kinds: KindCounters[];
}

export interface GeneratorOutcome {
  counters: GeneratorCounters;
  histogram: Histogram;
  /** Latencies of the responses whose status is not 2xx (also in `histogram`). */
  non2xxHistogram: Histogram;
  /** Wall time of the measured phase, ms (until the last in-flight response drained). */
  elapsedMs: number;
  /** Why the run ended early, when it did: nothing ever completed and every attempt failed. */
  abortedBecause: keyof ErrorCounts | null;
  /** The first TLS failure's message, with its code, when there was one. */
  tlsError: string | null;
  /** Per request name: the latencies (index = name's). */
  kindHistograms: Histogram[];
}

/** An open-model request that leaves this much after its intended time is counted as not sent on time. */
export const LATE_MS = 10;
/** Pause before reconnecting after a failed connect, so a refusing target is not hammered in a tight loop. */
const RECONNECT_DELAY_MS = 10;
const READ_BUFFER_BYTES = 64 * 1024;

type Phase = 'warmup' | 'measure' | 'drain' | 'done';

/** Each latency measured, for whoever subscribes (tests): published only when someone listens. */
const latencyChannel = channel(CHANNELS.benchLatency);

function newCounters(kinds: number): GeneratorCounters {
  return {
    completed: 0,
    sent: 0,
    bytes: 0,
    statusCodes: new Array<number>(600).fill(0),
    errors: { connect: 0, reset: 0, timeout: 0, parse: 0, tls: 0 },
    notSentOnTime: 0,
    kinds: Array.from({ length: kinds }, () => ({ completed: 0, statusCodes: new Array<number>(600).fill(0) })),
  };
}

/** A TLS failure's message with its code: "self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)". */
function tlsFailure(error: NodeJS.ErrnoException): string {
  return error.code === undefined ? error.message : `${error.message} (${error.code})`;
}

class Connection {
  readonly #gen: LoadGenerator;
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly #framer: ResponseFramer;
  /** Ring of in-flight requests: when each left, and what its latency is measured from (its intended time). */
  readonly #sentAt: Float64Array;
  readonly #baseAt: Float64Array;
  /** The template of each in-flight request. */
  readonly #template: Int32Array;
  #first = 0;
  inflight = 0;
  #socket: net.Socket | null = null;
  #connected = false;
  /** TCP is up (a failure from now on is TLS's, not the connection's). */
  #tcpUp = false;
  /** Responses completed in the read being handled: answered with one write once the read is framed. */
  #completedInRead = 0;
  #closeAfterResponse = false;
  #readAt = 0;
  /** Open model: listed among the connections with room for another request. */
  inFreeList = false;
  /** At most one pending reconnect, cleared with the connection: a refusing target cannot pile timers up. */
  #reconnect: NodeJS.Timeout | null = null;

  constructor(gen: LoadGenerator, pipelining: number) {
    this.#gen = gen;
    this.#sentAt = new Float64Array(pipelining);
    this.#baseAt = new Float64Array(pipelining);
    this.#template = new Int32Array(pipelining);
    const head = gen.plan.requests.head;
    this.#framer = new ResponseFramer(
      {
        onResponse: (status, close) => this.#onResponse(status, close),
        answersHead: () => head[this.#template[this.#first]!]!,
      },
      head.every(Boolean) ? true : head.some(Boolean) ? 'some' : false,
    );
  }

  get oldestSentAt(): number {
    return this.#sentAt[this.#first]!;
  }

  get writable(): boolean {
    return this.#connected && !this.#closeAfterResponse;
  }

  connect(): void {
    const gen = this.#gen;
    const { host, port, tls: secure } = gen.plan;
    const onread = { buffer: this.#readBuffer, callback: (nread: number, buf: Buffer) => this.#onRead(nread, buf) };
    const socket: net.Socket =
      secure === null
        ? net.connect({ host, port, noDelay: true, onread })
        : tls
            .connect({
              host,
              port,
              // tls.connect reads into it as net does (checked on Node 24); @types/node does not list the option.
              ...({ onread } as tls.ConnectionOptions),
              servername: secure.servername ?? (net.isIP(host) === 0 ? host : undefined),
              rejectUnauthorized: secure.rejectUnauthorized,
              ...(secure.ca === null ? {} : { ca: secure.ca }),
              // Reconnects resume the last session: a short handshake, as a browser or wrk does.
              ...(gen.tlsSession === null ? {} : { session: gen.tlsSession }),
            })
            .setNoDelay(true);
    this.#socket = socket;
    this.#connected = false;
    this.#tcpUp = false;
    this.#closeAfterResponse = false;
    this.#framer.reset();
    // A peer that never completes the connection or the handshake (frozen, dropping SYNs) fails it after the
    // request timeout: without this, a connection would wait for ever with nothing in flight to time out.
    socket.setTimeout(gen.plan.timeoutMs, () => {
      if (this.#connected) return;
      if (secure !== null && this.#tcpUp) gen.failTls(`no TLS handshake within ${gen.plan.timeoutMs} ms`);
      else gen.fail('connect');
      socket.destroy();
    });
    socket.on('connect', () => {
      this.#tcpUp = true;
      if (secure !== null) return;
      this.#connected = true;
      socket.setTimeout(0);
      gen.connectionReady(this);
    });
    if (secure !== null) {
      socket.on('secureConnect', () => {
        this.#connected = true;
        socket.setTimeout(0);
        gen.connectionReady(this);
      });
      socket.on('session', (session: Buffer) => (gen.tlsSession = session));
    }
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.#connected) return;
      if (secure !== null && this.#tcpUp) gen.failTls(tlsFailure(error));
      else gen.fail('connect');
    });
    socket.on('close', () => this.#onClose(socket));
  }

  /**
   * Sends `count` requests in one write at `now`, their latency measured from `baseAt`: `now` in the closed model, the
   * intended send time in the open model.
   */
  send(count: number, baseAt: number, now: number): void {
    const size = this.#sentAt.length;
    const picker = this.#gen.picker;
    const socket = this.#socket!;
    if (!picker.single && count > 1) socket.cork();
    for (let i = 0; i < count; i++) {
      const slot = (this.#first + this.inflight + i) % size;
      this.#sentAt[slot] = now;
      this.#baseAt[slot] = baseAt;
      if (!picker.single) {
        socket.write(picker.next());
        this.#template[slot] = picker.template;
      }
    }
    this.inflight += count;
    if (picker.single) socket.write(this.#gen.batch(count));
    else if (count > 1) socket.uncork();
  }

  reconnectAfter(ms: number): void {
    this.#reconnect ??= setTimeout(() => {
      this.#reconnect = null;
      this.connect();
    }, ms);
  }

  destroy(): void {
    if (this.#reconnect !== null) clearTimeout(this.#reconnect);
    this.#reconnect = null;
    this.#socket?.destroy();
  }

  #onRead(nread: number, buf: Buffer): boolean {
    // One clock read per read: it timestamps every response framed in it and the requests that replace them.
    this.#readAt = performance.now();
    this.#gen.counters.bytes += nread;
    this.#completedInRead = 0;
    try {
      this.#framer.execute(buf, nread);
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      this.#gen.lose(this, 'parse');
      return false;
    }
    if (this.#completedInRead > 0) this.#gen.responsesDone(this, this.#completedInRead, this.#readAt);
    if (this.#closeAfterResponse) this.#socket?.destroy();
    return true;
  }

  #onResponse(status: number, close: boolean): void {
    if (this.inflight === 0) throw new ParseError('a response arrived for no request');
    const first = this.#first;
    this.#gen.recordResponse(status, this.#readAt - this.#baseAt[first]!, this.#sentAt[first]!, this.#template[first]!);
    this.#first = (first + 1) % this.#sentAt.length;
    this.inflight--;
    this.#completedInRead++;
    if (close) this.#closeAfterResponse = true;
  }

  #onClose(socket: net.Socket): void {
    if (socket !== this.#socket) return;
    // A response delimited by the end of the connection ends now.
    this.#completedInRead = 0;
    this.#readAt = performance.now();
    try {
      if (this.#framer.end()) this.#gen.responsesDone(this, 0, this.#readAt);
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      this.#gen.fail('parse');
    }
    const lost = this.inflight;
    const wasConnected = this.#connected;
    this.inflight = 0;
    this.#first = 0;
    this.#connected = false;
    this.#socket = null;
    this.#gen.connectionClosed(this, lost, wasConnected);
  }
}

export class LoadGenerator {
  readonly plan: GeneratorPlan;
  readonly picker: RequestPicker;
  counters: GeneratorCounters;
  histogram: Histogram;
  non2xxHistogram: Histogram;
  readonly kindHistograms: Histogram[];
  /** The last TLS session the target gave: reconnects resume it. */
  tlsSession: Buffer | null = null;
  #tlsError: string | null = null;
  /** Template index → name index (-1: none). */
  readonly #kindOf: number[];
  readonly #connections: Connection[] = [];
  /** batch(k) = k requests back to back, precomputed for k = 1..pipelining. */
  readonly #batches: Buffer[] = [];
  #phase: Phase = 'warmup';
  #measureStart = 0;
  #measureEnd = 0;
  /** Requests in flight over all connections. */
  #inflight = 0;
  /** With an amount: requests still to send in the measured phase (Infinity otherwise). */
  #budget = Infinity;
  #everCompleted = false;
  #failures = 0;
  #abortedBecause: keyof ErrorCounts | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  #resolve: (() => void) | null = null;
  #onMeasuring: (() => void) | null = null;
  // Open model: intended send times that are due but not sent yet, and the connections with room for one more.
  #interval = 0;
  #nextIntended = 0;
  #backlog: number[] = [];
  #backlogHead = 0;
  readonly #free: Connection[] = [];
  #tick: NodeJS.Timeout | null = null;

  constructor(plan: GeneratorPlan) {
    this.plan = plan;
    this.picker = new RequestPicker(plan.requests, plan.thread, plan.threads);
    this.counters = newCounters(plan.requests.names.length);
    this.#kindOf = plan.requests.kind;
    this.histogram = createLatencyHistogram(plan.timeoutMs * 1000);
    this.non2xxHistogram = createLatencyHistogram(plan.timeoutMs * 1000);
    this.kindHistograms = plan.requests.names.map(() => createLatencyHistogram(plan.timeoutMs * 1000));
    if (this.picker.single) {
      const request = this.picker.next();
      for (let k = 1; k <= plan.pipelining; k++) this.#batches.push(Buffer.concat(new Array<Buffer>(k).fill(request)));
    }
    if (plan.rate !== null) this.#interval = 1000 / plan.rate;
  }

  /** Runs to the end; `onMeasuring` is called when the warm-up is over and measuring starts. */
  run(onMeasuring?: () => void): Promise<GeneratorOutcome> {
    this.#onMeasuring = onMeasuring ?? null;
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      for (let i = 0; i < this.plan.connections; i++) {
        const connection = new Connection(this, this.plan.pipelining);
        this.#connections.push(connection);
        connection.connect();
      }
      if (this.plan.warmupMs > 0) this.#timers.push(setTimeout(() => this.#startMeasuring(), this.plan.warmupMs));
      else this.#startMeasuring();
      if (this.plan.rate !== null) {
        this.#nextIntended = performance.now();
        this.#schedule();
      }
      const every = Math.min(1000, Math.max(10, this.plan.timeoutMs / 10));
      this.#timers.push(setInterval(() => this.#checkTimeouts(), every));
    }).then(() => ({
      counters: this.counters,
      histogram: this.histogram,
      non2xxHistogram: this.non2xxHistogram,
      elapsedMs: this.#measureEnd - this.#measureStart,
      abortedBecause: this.#abortedBecause,
      tlsError: this.#tlsError,
      kindHistograms: this.kindHistograms,
    }));
  }

  /** Ends the run now (Ctrl-C): in-flight requests are not waited for. */
  stop(): void {
    this.#finish();
  }

  batch(count: number): Buffer {
    return this.#batches[count - 1]!;
  }

  #startMeasuring(): void {
    if (this.#phase !== 'warmup') return;
    this.counters = newCounters(this.plan.requests.names.length);
    this.histogram.reset();
    this.non2xxHistogram.reset();
    for (const histogram of this.kindHistograms) histogram.reset();
    this.#phase = 'measure';
    this.#measureStart = performance.now();
    // Requests of the warm-up still in flight are not measured when they end (recordResponse), nor counted as sent;
    // those due and not yet sent leave in the measured phase, are counted, and so count against the amount.
    const carried = this.#backlog.length - this.#backlogHead;
    if (this.plan.amount !== null) this.#budget = Math.max(0, this.plan.amount - carried);
    if (this.plan.durationMs !== null) this.#timers.push(setTimeout(() => this.#drain(), this.plan.durationMs));
    else if (this.#budget === 0) this.#drain();
    this.#onMeasuring?.();
  }

  get #sending(): boolean {
    return this.#phase === 'warmup' || this.#phase === 'measure';
  }

  get #backlogEmpty(): boolean {
    return this.#backlogHead === this.#backlog.length;
  }

  // Called by connections.

  connectionReady(connection: Connection): void {
    if (this.plan.rate !== null) {
      this.#markFree(connection);
      this.#sendDue(performance.now());
    } else {
      this.#sendClosed(connection, this.plan.pipelining, performance.now());
    }
  }

  /** One response; `sentAt` is when its request left: one sent during the warm-up is not measured, whenever it ends. */
  recordResponse(status: number, latencyMs: number, sentAt: number, template: number): void {
    this.#inflight--;
    this.#everCompleted = true;
    if (this.#phase === 'warmup' || sentAt < this.#measureStart) return;
    const counters = this.counters;
    counters.completed++;
    counters.statusCodes[status]!++;
    const micros = latencyMs * 1000;
    recordMicros(this.histogram, micros);
    if (status < 200 || status >= 300) recordMicros(this.non2xxHistogram, micros);
    const kind = this.#kindOf[template]!;
    if (kind >= 0) {
      counters.kinds[kind]!.completed++;
      counters.kinds[kind]!.statusCodes[status]!++;
      recordMicros(this.kindHistograms[kind]!, micros);
    }
    if (latencyChannel.hasSubscribers) latencyChannel.publish(micros);
  }

  /** `count` responses completed on `connection` in one read: send what replaces them. */
  responsesDone(connection: Connection, count: number, now: number): void {
    if (this.plan.rate !== null) {
      if (connection.writable) this.#markFree(connection);
      this.#sendDue(now);
    } else if (count > 0 && connection.writable) {
      this.#sendClosed(connection, count, now);
    }
    if (this.#phase === 'drain' && this.#inflight === 0 && this.#backlogEmpty) this.#finish();
  }

  connectionClosed(connection: Connection, lost: number, wasConnected: boolean): void {
    this.#inflight -= lost;
    if (lost > 0) this.fail('reset', lost);
    if (this.#phase === 'done') return;
    if (this.#phase === 'drain' && this.#inflight === 0 && this.#backlogEmpty) return this.#finish();
    if (!this.#sending && !(this.#phase === 'drain' && !this.#backlogEmpty)) return;
    if (wasConnected) connection.connect();
    else connection.reconnectAfter(RECONNECT_DELAY_MS);
  }

  /** Gives up on every request in flight on `connection` (a timeout, unparseable bytes) and closes it. */
  lose(connection: Connection, kind: keyof ErrorCounts): void {
    const lost = connection.inflight;
    this.#inflight -= lost;
    connection.inflight = 0;
    this.fail(kind, Math.max(1, lost));
    // The close handler then sees nothing in flight, so these are not counted again as resets.
    connection.destroy();
  }

  /** A TLS handshake failed: counted, and the first reason kept to explain a run that never got through. */
  failTls(reason: string): void {
    this.#tlsError ??= reason;
    this.fail('tls');
  }

  fail(kind: keyof ErrorCounts, count = 1): void {
    if (this.#phase !== 'warmup') this.counters.errors[kind] += count;
    this.#failures += count;
    // A target that never answers: give up once every connection has failed three times.
    if (!this.#everCompleted && this.#failures >= 3 * this.plan.connections && this.#abortedBecause === null) {
      this.#abortedBecause = kind;
      queueMicrotask(() => this.stop());
    }
  }

  // Closed model.

  #sendClosed(connection: Connection, count: number, now: number): void {
    if (!this.#sending) return;
    if (this.#phase === 'measure' && this.#budget !== Infinity) {
      count = Math.min(count, this.#budget);
      if (count === 0) return;
      this.#budget -= count;
      // Every request of the amount has left: the run ends when they are answered.
      if (this.#budget === 0) queueMicrotask(() => this.#drain());
    }
    this.#inflight += count;
    if (this.#phase === 'measure') this.counters.sent += count;
    connection.send(count, now, now);
  }

  // Open model.

  #markFree(connection: Connection): void {
    if (!connection.inFreeList && connection.inflight < this.plan.pipelining) {
      connection.inFreeList = true;
      this.#free.push(connection);
    }
  }

  #schedule(): void {
    if (!this.#sending) return;
    const now = performance.now();
    // Intended send times that are due join the backlog; the backlog leaves on free connections.
    while (this.#nextIntended <= now && this.#budget > 0) {
      this.#backlog.push(this.#nextIntended);
      this.#nextIntended += this.#interval;
      if (this.#phase === 'measure' && this.#budget !== Infinity && --this.#budget === 0) {
        queueMicrotask(() => this.#drain());
      }
    }
    this.#sendDue(now);
    this.#tick = setTimeout(() => this.#schedule(), Math.max(0, this.#nextIntended - performance.now()));
  }

  #sendDue(now: number): void {
    if (!this.#sending && this.#phase !== 'drain') return;
    const counters = this.counters;
    while (!this.#backlogEmpty && this.#free.length > 0) {
      const connection = this.#free[this.#free.length - 1]!;
      if (!connection.writable || connection.inflight >= this.plan.pipelining) {
        connection.inFreeList = false;
        this.#free.pop();
        continue;
      }
      const intended = this.#backlog[this.#backlogHead++]!;
      if (this.#phase !== 'warmup') {
        if (now - intended > LATE_MS) counters.notSentOnTime++;
        counters.sent++;
      }
      this.#inflight++;
      connection.send(1, intended, now);
    }
    if (this.#backlogHead > 4096 && this.#backlogHead * 2 > this.#backlog.length) {
      this.#backlog = this.#backlog.slice(this.#backlogHead);
      this.#backlogHead = 0;
    }
  }

  // Ending.

  #drain(): void {
    if (this.#phase !== 'measure') return;
    // Bounded by duration, what is still due will never leave: not sent on time. Bounded by an amount, it still goes.
    if (this.plan.durationMs !== null) {
      this.counters.notSentOnTime += this.#backlog.length - this.#backlogHead;
      this.#backlogHead = this.#backlog.length;
    }
    this.#phase = 'drain';
    this.#measureEnd = performance.now();
    if (this.#inflight === 0 && this.#backlogEmpty) return this.#finish();
    // In-flight requests get one timeout to answer; what is still unanswered then counts as timed out.
    this.#timers.push(setTimeout(() => this.#finish(), this.plan.timeoutMs));
  }

  #checkTimeouts(): void {
    const now = performance.now();
    for (const connection of this.#connections) {
      if (connection.inflight > 0 && now - connection.oldestSentAt > this.plan.timeoutMs)
        this.lose(connection, 'timeout');
    }
  }

  #finish(): void {
    if (this.#phase === 'done') return;
    const now = performance.now();
    if (this.#phase === 'warmup') this.#measureStart = now;
    if (this.#phase === 'drain') {
      if (this.#inflight > 0) this.counters.errors.timeout += this.#inflight;
      else this.#measureEnd = now;
    } else {
      this.#measureEnd = now;
    }
    this.#phase = 'done';
    if (this.#tick !== null) clearTimeout(this.#tick);
    for (const timer of this.#timers) clearTimeout(timer);
    for (const connection of this.#connections) connection.destroy();
    this.#resolve?.();
  }
}
