/**
 * The runtime core, framework-agnostic: it sees each request before the application does (adapters arrange that),
 * answers the health and metrics endpoints, refuses what must be refused (shed load with 503, oversized bodies with
 * 413), and times the rest. Around it: the sampler, the overload guard, the leak detector, graceful shutdown and
 * crash bundles. Events: 'sample', 'overload', 'recover', 'leak', 'ready', 'shutdown' (also on diagnostics_channel),
 * and 'request' for every completed request while anyone listens (the console's log-requests).
 *
 * Longer than most files because the per-request path (handle, the finish channel) and what reads its state
 * (readiness, shutdown, samples) belong together; the parts with no such state live beside it (flights.ts keeps the
 * requests in flight).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { CHANNELS, debug, publish } from '../diagnostics.ts';
import { httpStatus, invalidOption, NodescaleError } from '../errors.ts';
import { MAX_EVENT_DETAIL } from '../ipc.ts';
import { sendJson } from '../json-response.ts';
import { writeHeapSnapshot } from './heap-snapshot.ts';
import { LeakDetector, type LeakReport } from './leak-detector.ts';
import { drainServer } from './drain-server.ts';
import { createRuntimeMetrics, type RuntimeMetrics } from './metrics.ts';
import { pathOf, resolveRuntimeOptions, type ResolvedRuntimeOptions, type RuntimeOptions } from './options.ts';
import { OverloadGuard, type OverloadReason, type OverloadState } from './overload.ts';
import { checkCrashDirectory, installPostMortem } from './post-mortem.ts';
import {
  answerMetricsRequests,
  isSupervisedWorker,
  leaveSigintToSupervisor,
  tellSupervisor,
} from './supervisor-client.ts';
import { clientAddress, isPrivateClient } from './private-client.ts';
import { RingBuffer } from './ring-buffer.ts';
import { blamedFrame, frameLocation } from './stall-file.ts';
import { startStallWatch, type StallReport } from './stall.ts';
import { Sampler, type RuntimeSample } from './sampler.ts';
import { Flights, type Tracked } from './flights.ts';
import { GracefulShutdown, type ShutdownHook, type ShutdownOutcome } from './shutdown.ts';

/** Adapters put a request's route label (or a function that finds it once routed) under this symbol on the request. */
export const ROUTE = Symbol.for('nodescale.route');

type Labelled = IncomingMessage & { [ROUTE]?: string | (() => string | undefined) };

export type Readiness = 'starting' | 'ready' | 'unavailable' | 'overloaded' | 'shutting-down';

/** One completed request, as 'request' events (the console's log-requests) carry it. */
export interface RequestLogEntry {
  time: string;
  method: string | undefined;
  url: string | undefined;
  status: number;
  /** ms, or null when instrumentation was off. */
  ms: number | null;
  remote: string | null;
}

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

const FINISH_CHANNEL = 'http.server.response.finish';

export class Runtime extends EventEmitter {
  readonly options: ResolvedRuntimeOptions;
  readonly metrics: RuntimeMetrics;
  readonly #history: RingBuffer<RuntimeSample>;
  readonly #sampler: Sampler;
  readonly #guard: OverloadGuard | null;
  readonly #leak: LeakDetector | null;
  readonly #shutdown: GracefulShutdown | null;
  /** Requests in flight by connection, with when the runtime first saw each (performance.now(); 0 when not timed). */
  readonly #flights = new Flights();
  #newConnections = 0;
  /**
   * Finished responses come from node:http's own diagnostics channel: a 'close' listener on every response would cost
   * 3–4% of a hello-world server's throughput by itself (measured). Aborted responses never finish: each sample
   * sweeps them out of the in-flight set.
   */
  readonly #onFinish: (message: unknown) => void;
  readonly #endpoints = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  /** Marks the character after the leading '/' of each endpoint path (0 for '/' itself): most URLs are ruled out unhashed. */
  readonly #endpointKeys = new Uint8Array(0x10000);
  #removePostMortem: (() => void) | null = null;
  #stopStallWatch: (() => void) | null = null;
  /** The request seen start last (stall capture on): the watchdog names it while the loop is held. */
  #lastRequest: IncomingMessage | null = null;
  /** The last stalls, for the console's `stalls`. */
  readonly #stalls = new RingBuffer<StallReport & { at: string }>(20);
  /** Under `nodescale run`: stops answering the supervisor (supervisor-client.ts). */
  #unlinkSupervisor: (() => void) | null = null;
  #server: Server | null = null;
  #restoreEmit: (() => void) | null = null;
  #console: { close(): Promise<void> } | null = null;
  #started = false;
  #ready = false;
  /** setUnavailable(true): a dependency is down (a compute service's broker): not ready until it is back. */
  #unavailable = false;
  #shuttingDown = false;
  /** Whether the guard checks the lag limit per request (it needs the time). */
  readonly #lagLimit: boolean;
  #instrumented = true;
  #completed = 0;
  #shed = 0;
  #lastSnapshotAt = -Infinity;
  #startedAt = Date.now();
  /** Whether anyone listens to 'request' (the console's log-requests): kept up to date, not counted per request. */
  #requestLog = false;

  constructor(options: RuntimeOptions = {}) {
    super();
    this.on('newListener', (event) => event === 'request' && (this.#requestLog = true));
    this.on('removeListener', (event) => event === 'request' && (this.#requestLog = this.listenerCount('request') > 0));
    this.#onFinish = (message) => {
      const { response, socket } = message as { response: Tracked; socket: object };
      const start = this.#flights.finish(socket, response);
      // -1: not ours (another runtime's server, or a response the runtime answered itself: endpoints, 503, 413).
      if (start !== -1) this.#requestDone(response, start);
    };
    this.options = resolveRuntimeOptions(options);
    const o = this.options;
    this.#history = new RingBuffer(o.historySize);
    this.#guard = o.overload && new OverloadGuard(o.overload);
    this.#lagLimit = o.overload !== null && o.overload.maxLagMs > 0;
    this.metrics = createRuntimeMetrics(
      {
        latest: () => this.#history.latest(),
        inFlight: () => this.#flights.count,
        ready: () => this.readiness === 'ready',
        overloaded: () => this.#guard?.overloaded ?? false,
        leakSuspected: () => this.#leak?.suspected ?? false,
      },
      o,
    );
    this.#sampler = new Sampler(
      o.sampleIntervalMs,
      {
        takeCompleted: () => {
          const n = this.#completed;
          this.#completed = 0;
          return n;
        },
        takeShed: () => {
          const n = this.#shed;
          this.#shed = 0;
          return n;
        },
        inFlight: () => this.#flights.count,
      },
      (sample) => this.#onSample(sample),
      (bytes, time) => this.#onMajorGc(bytes, time),
    );
    this.#leak = o.leak && new LeakDetector(o.leak, v8.getHeapStatistics().heap_size_limit);
    this.#shutdown = o.shutdown && new GracefulShutdown(this.#shutdownTarget(), o.shutdown, o.logger);
    // Validated now: an insecure crash-bundle directory fails protect() itself (and the admin console's
    // configuration, in console.ts).
    if (o.postMortem !== null) checkCrashDirectory(o.postMortem.dir);
    if (o.stall !== null) checkCrashDirectory(o.stall.dir, 'stall.dir');
    if (o.metricsPath !== null) this.#endpoints.set(o.metricsPath, (_req, res) => void this.#serveMetrics(res));
    this.#endpoints.set(o.livenessPath, (_req, res) =>
      sendJson(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000) }),
    );
    this.#endpoints.set(o.readinessPath, (_req, res) => {
      const readiness = this.readiness;
      if (readiness === 'ready') sendJson(res, 200, { status: 'ready' });
      else sendJson(res, 503, { status: 'not-ready', reason: readiness });
    });
    for (const path of this.#endpoints.keys()) this.#endpointKeys[path.charCodeAt(1) | 0] = 1;
  }

  /**
   * The admin console serving this runtime (src/protect/console.ts opens it): closed with the runtime, and by graceful
   * shutdown. The runtime knows it only as something to close, so it does not depend on src/admin/.
   */
  useConsole(console: { close(): Promise<void> }): void {
    this.#console = console;
    this.#shutdown?.addHook(() => console.close());
  }

  /** Starts sampling and the process-wide handlers (signals, crash bundles). Called by adapters. */
  start(): this {
    if (this.#started) return this;
    if (this.options.admin !== null && this.#console === null) {
      throw invalidOption(
        'admin',
        'used through protect(), createRuntime() or the fastify adapter, which open the console',
        '(a new Runtime)',
      );
    }
    this.#started = true;
    this.#sampler.start();
    this.#guard?.start();
    subscribe(FINISH_CHANNEL, this.#onFinish);
    this.#shutdown?.install();
    if (isSupervisedWorker()) {
      // Before the server listens (protect() starts the runtime first): the supervisor then waits for our 'ready'.
      tellSupervisor({ nodescale: 'runtime', pid: process.pid });
      const stopAnswering = answerMetricsRequests(this.metrics.served);
      const restoreSigint = leaveSigintToSupervisor();
      this.#unlinkSupervisor = () => {
        stopAnswering();
        restoreSigint();
      };
    }
    const stall = this.options.stall;
    if (stall !== null && isMainThread)
      this.#stopStallWatch = startStallWatch(
        stall,
        () => requestLabel(this.#lastRequest),
        (report) => this.#onStall(report),
        (message) => this.options.logger('warn', `stall capture: ${message}`),
      );
    const pm = this.options.postMortem;
    if (pm) {
      this.#removePostMortem = installPostMortem(
        pm,
        () => this.samples(),
        this.options.logger,
        (dir, error) => {
          // Written before the process goes: the IPC write is tried at once, so the supervisor usually has it first.
          this.#tellSupervisorOf('crash-bundle', dir);
          publish(CHANNELS.crash, () => ({ dir, error }));
        },
      );
    }
    return this;
  }

  /**
   * Puts the runtime in front of a node:http/https server: it sees each request before any 'request' listener, those
   * added later included. Readiness follows the server's 'listening' unless readyWhen is 'manual'.
   */
  attach(server: Server): this {
    if (this.#server !== null)
      throw new NodescaleError('NS_ERR_RUNTIME_ATTACHED', 'this runtime is already attached to a server');
    this.#server = server;
    const handle = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const emit = server.emit;
    server.emit = function (this: Server, event: string | symbol, req?: unknown, res?: unknown): boolean {
      if (event === 'request' && handle(req as IncomingMessage, res as ServerResponse)) return true;
      // eslint-disable-next-line prefer-rest-params
      return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
    } as typeof server.emit;
    this.#restoreEmit = () => (server.emit = emit);
    if (this.options.readyWhen === 'listening') {
      if (server.listening) this.setReady();
      else server.once('listening', () => this.setReady());
    }
    return this.start();
  }

  /** Handles a request if it is the runtime's to answer; returns true when it did (the app must not). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    // Kept short: this runs before every request. What is rare (endpoints, bodies, shutdown) is in methods of its own.
    const url = req.url ?? '/';
    if (this.#endpointKeys[url.charCodeAt(1) | 0] === 1 && this.#answerEndpoint(url, req, res)) return true;
    if (this.#shuttingDown) res.setHeader('connection', 'close');
    if (this.#stopStallWatch !== null) this.#lastRequest = req;
    if (req.method !== 'GET' && this.#refuseBody(req, res)) return true;
    // One clock reading serves both the lag limit and the request's timing.
    const now = this.#instrumented || this.#lagLimit ? performance.now() : 0;
    if (this.#guard !== null) {
      const reason = this.#guard.shouldShed(req, this.#flights.count, now);
      if (reason !== null) {
        this.#refuse(res, reason);
        return true;
      }
    }
    // Closed connections are swept on every sample, and every 256 new ones (sampling may be off).
    if (this.#flights.begin(req.socket, res, this.#instrumented ? now : 0) && ++this.#newConnections % 256 === 0)
      this.#flights.sweep();
    return false;
  }

  #answerEndpoint(url: string, req: IncomingMessage, res: ServerResponse): boolean {
    const path = url.includes('?') ? pathOf(url) : url;
    const endpoint = this.#endpoints.get(path);
    if (endpoint === undefined) return false;
    // Not the runtime's to answer for this client: the request goes to the app, as for any path it does not serve.
    if (
      path === this.options.metricsPath &&
      this.options.metricsAccess === 'private' &&
      !isPrivateClient(req, this.options.trustProxy)
    )
      return false;
    if (this.#shuttingDown) res.setHeader('connection', 'close');
    endpoint(req, res);
    return true;
  }

  /** Refuses a body announced larger than maxBodyBytes with 413; returns true when it did. */
  #refuseBody(req: IncomingMessage, res: ServerResponse): boolean {
    const max = this.options.maxBodyBytes;
    if (max <= 0 || BODYLESS.has(req.method ?? 'GET')) return false;
    const length = Number(req.headers['content-length']);
    if (!(length > max)) return false;
    sendJson(
      res,
      httpStatus('NS_ERR_PAYLOAD_TOO_LARGE'),
      { error: { code: 'NS_ERR_PAYLOAD_TOO_LARGE', message: `request bodies are limited to ${max} bytes` } },
      { connection: 'close' },
    );
    return true;
  }

  #requestDone(res: Tracked, start: number): void {
    this.#completed++;
    if (this.#requestLog) this.#logRequest(res, start);
    if (start > 0 && this.#instrumented) {
      const req = res.req as Labelled;
      const label = req[ROUTE];
      const route = (typeof label === 'function' ? label() : label) ?? this.options.route?.(req) ?? '*';
      this.metrics.http.observe(route, req.method ?? 'GET', res.statusCode, (performance.now() - start) / 1000);
    }
  }

  #logRequest(res: Tracked, start: number): void {
    const req = res.req;
    this.emit('request', {
      time: new Date().toISOString(),
      method: req.method,
      url: req.url,
      status: res.statusCode,
      ms: start > 0 ? Math.round((performance.now() - start) * 1000) / 1000 : null,
      remote: clientAddress(req, this.options.trustProxy) ?? null,
    } satisfies RequestLogEntry);
  }

  #refuse(res: ServerResponse, reason: OverloadReason | 'overload'): void {
    this.#shed++;
    const retryAfter = this.#guard!.retryAfterSeconds();
    this.metrics.shed.inc({ reason });
    sendJson(
      res,
      httpStatus('NS_ERR_OVERLOADED'),
      {
        error: { code: 'NS_ERR_OVERLOADED', message: `the server is overloaded; retry after ${retryAfter} s`, reason },
      },
      { 'retry-after': String(retryAfter) },
    );
  }

  async #serveMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.metrics.served.text();
      res.writeHead(200, { 'content-type': this.metrics.served.contentType, 'cache-control': 'no-store' });
      res.end(text);
    } catch (error) {
      sendJson(res, 500, { error: { code: 'NS_ERR_INTERNAL', message: (error as Error).message } });
    }
  }

  #onSample(sample: RuntimeSample): void {
    this.#flights.sweep();
    this.#history.push(sample);
    if (this.#unlinkSupervisor !== null) {
      tellSupervisor({
        nodescale: 'sample',
        eventLoopDelayP99Ms: sample.eventLoop.delayP99Ms,
        requestsPerSecond: sample.http.requestsPerSecond,
        detail: {
          intervalMs: sample.intervalMs,
          utilization: sample.eventLoop.utilization,
          cpuPercent: sample.cpu.percent,
          rssBytes: sample.memory.rss,
          heapUsedBytes: sample.memory.heapUsed,
          heapTotalBytes: sample.memory.heapTotal,
          gcPauseMs: sample.gc.pauseMs,
          inFlight: sample.http.inFlight,
          shedPerSecond: sample.http.shedPerSecond,
          latency: { bounds: [...this.metrics.http.bounds], counts: this.metrics.http.totals() },
        },
      });
    }
    const transition = this.#guard?.observe(sample) ?? null;
    if (transition?.type === 'overload') {
      this.options.logger('warn', 'overloaded: shedding load', {
        reasons: transition.reasons,
        eventLoopDelayP99Ms: sample.eventLoop.delayP99Ms,
      });
      this.#tellSupervisorOf('overload', `shedding: ${transition.reasons.join(', ')}`);
      this.emit('overload', transition);
      publish(CHANNELS.overload, () => transition);
    } else if (transition?.type === 'recover') {
      this.options.logger('info', 'recovered: no longer shedding', { durationMs: transition.durationMs });
      this.#tellSupervisorOf('recover', `no longer shedding, after ${Math.round(transition.durationMs)} ms`);
      this.emit('recover', transition);
      publish(CHANNELS.recover, () => transition);
    }
    debug('sample %j', sample.eventLoop);
    this.emit('sample', sample);
    publish(CHANNELS.sample, () => sample);
  }

  #tellSupervisorOf(kind: 'overload' | 'recover' | 'leak' | 'crash-bundle' | 'stall', detail: string): void {
    // Cut to what the supervisor takes (a long function name or URL must not cost the mark).
    if (this.#unlinkSupervisor !== null)
      tellSupervisor({ nodescale: 'runtime-event', kind, detail: detail.slice(0, MAX_EVENT_DETAIL) });
  }

  /** The last stalls the watchdog reported, oldest first (the console's `stalls`). */
  recentStalls(): (StallReport & { at: string })[] {
    return this.#stalls.toArray();
  }

  #onStall(report: StallReport): void {
    const { capture, heldMs } = report;
    this.metrics.stalls.inc({ captured: capture === null ? 'false' : 'true' });
    this.#stalls.push({ ...report, at: new Date().toISOString() });
    const top = capture === null ? undefined : blamedFrame(capture.stack);
    const where = top === undefined ? null : `${top.function} (${frameLocation(top)})`;
    const hottest = capture?.profile?.top[0];
    const hot =
      hottest === undefined
        ? null
        : `${Math.round(hottest.share * 100)}% in ${hottest.function}${hottest.url ? ` (${frameLocation(hottest)})` : ''}`;
    this.options.logger('warn', `event loop stalled for ${heldMs} ms`, {
      heldMs,
      ...(capture === null
        ? { captured: false, why: report.why ?? 'rate limit (stall.maxPerMinute)' }
        : {
            at: where,
            late: capture.late,
            request: capture.request,
            file: capture.file,
            ...(hot === null ? {} : { mostTime: hot }),
          }),
    });
    this.#tellSupervisorOf(
      'stall',
      `the event loop was held ${heldMs} ms${where === null ? ` (not captured: ${report.why ?? 'rate limit'})` : ` in ${where}${capture!.late ? ' (captured late: native code)' : ''}`}${capture?.request ? `; ${capture.request}` : ''}${hot === null ? '' : `; profiled: ${hot}`}${capture?.file ? `; ${capture.file}` : ''}`,
    );
    this.emit('stall', report);
    publish(CHANNELS.stall, () => report);
  }

  #onMajorGc(bytes: number, time: number): void {
    const finding = this.#leak?.observe(bytes, time);
    if (!finding) return;
    const leak = this.options.leak!;
    // One report (and snapshot) per cooldown, however many GCs see the leak.
    if (Date.now() - this.#lastSnapshotAt < leak.snapshotCooldownMs) return;
    this.#lastSnapshotAt = Date.now();
    void (async () => {
      let snapshot: string | null = null;
      let snapshotSkipped: string | null = leak.snapshotDir === null ? 'no snapshotDir configured' : null;
      if (leak.snapshotDir !== null) {
        try {
          ({ file: snapshot, skipped: snapshotSkipped } = await writeHeapSnapshot(leak.snapshotDir, 'leak'));
        } catch (error) {
          snapshotSkipped = `writing failed: ${(error as Error).message}`;
        }
      }
      const report: LeakReport = { ...finding, snapshot, snapshotSkipped };
      this.options.logger('warn', 'memory leak suspected: the post-GC heap keeps growing', { ...report });
      this.#tellSupervisorOf(
        'leak',
        `the post-GC heap keeps growing${snapshot === null ? '' : `; heap snapshot ${snapshot}`}`,
      );
      this.emit('leak', report);
      publish(CHANNELS.leak, () => report);
    })();
  }

  #shutdownTarget() {
    return {
      beginShutdown: (reason: string) => {
        this.#shuttingDown = true;
        this.emit('shutdown');
        publish(CHANNELS.shutdown, () => ({ reason }));
        for (const [res] of this.#flights.entries()) if (!res.headersSent) res.setHeader('connection', 'close');
      },
      closeServer: () =>
        new Promise<void>((resolve) => {
          const server = this.#server;
          if (server === null || !server.listening) return resolve();
          drainServer(server, this.options.shutdown!.idleDrainMs, () => resolve());
        }),
      inFlight: () => {
        this.#flights.sweep();
        return [...this.#flights.entries()].map(
          ([res, start]) => [res.req, res, start] as [IncomingMessage, ServerResponse, number],
        );
      },
      inFlightCount: () => this.inFlightCount,
    };
  }

  // Public state and controls.

  /**
   * 'overloaded' while the guard is in overload, and while requests are being shed for any reason (the lag or the
   * in-flight limit too): in the current sampling interval, or the last one. A balancer then sees a process that
   * refuses requests as not ready.
   */
  get readiness(): Readiness {
    if (this.#shuttingDown) return 'shutting-down';
    if (this.#guard?.overloaded || this.#shed > 0 || (this.#history.latest()?.http.shedPerSecond ?? 0) > 0)
      return 'overloaded';
    if (this.#unavailable) return 'unavailable';
    return this.#ready ? 'ready' : 'starting';
  }

  /**
   * Not ready for a while after it was: `true` while something it needs is down (the broker of a compute service,
   * reconnecting), `false` once it is back. A supervisor's ready is not taken back; a balancer's /readyz is.
   */
  setUnavailable(unavailable: boolean): void {
    this.#unavailable = unavailable;
  }

  /** Marks the process ready (readyWhen 'manual': after the database is connected, say). */
  setReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.emit('ready');
    // Under a supervisor (`nodescale run`, a cluster primary): tell it this worker can take traffic.
    tellSupervisor({ nodescale: 'ready', pid: process.pid });
  }

  get overload(): OverloadState | null {
    return this.#guard?.state ?? null;
  }

  get inFlightCount(): number {
    this.#flights.sweep();
    return this.#flights.count;
  }

  /** The most recent samples, oldest first. */
  samples(count?: number): RuntimeSample[] {
    return this.#history.toArray(count);
  }

  latest(): RuntimeSample | undefined {
    return this.#history.latest();
  }

  get instrumented(): boolean {
    return this.#instrumented;
  }

  /** Switches instrumentation (sampling, HTTP timing) off and on at run time. Off, sample-based shedding stops too. */
  instrument(on: boolean): void {
    this.#instrumented = on;
    if (on && this.#started) this.#sampler.start();
    else this.#sampler.stop();
  }

  /** Registers a cleanup hook for graceful shutdown (close a database, a broker). Last registered runs first. */
  onShutdown(hook: ShutdownHook): void {
    if (this.#shutdown === null) throw shutdownDisabled();
    this.#shutdown.addHook(hook);
  }

  /** Starts a graceful shutdown, as SIGTERM does; `graceMs` overrides the configured grace period. */
  shutdown(reason = 'requested', graceMs?: number): Promise<ShutdownOutcome> {
    if (this.#shutdown === null) throw shutdownDisabled();
    return this.#shutdown.shutdown(reason, graceMs);
  }

  /** Where the protected server listens, for `info`. */
  listeningAddress(): string | null {
    const address = this.#server?.address();
    if (address === null || address === undefined) return null;
    return typeof address === 'string'
      ? address
      : `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  /** Detaches everything: the server's emit, sampling, signal handlers, the crash handler. For tests and hot reload. */
  close(): void {
    void this.#console?.close();
    unsubscribe(FINISH_CHANNEL, this.#onFinish);
    this.#sampler.stop();
    this.#guard?.stop();
    this.#shutdown?.uninstall();
    this.#removePostMortem?.();
    this.#stopStallWatch?.();
    this.#stopStallWatch = null;
    this.#unlinkSupervisor?.();
    this.#unlinkSupervisor = null;
    this.#restoreEmit?.();
    this.#started = false;
  }
}

/** "GET /path" of a request, without its query string (it may carry secrets). */
function requestLabel(req: IncomingMessage | null): string | null {
  if (req === null) return null;
  return `${req.method ?? 'GET'} ${pathOf(req.url)}`;
}

const shutdownDisabled = () =>
  new NodescaleError('NS_ERR_SHUTDOWN_DISABLED', 'graceful shutdown is disabled (shutdown: false)');
