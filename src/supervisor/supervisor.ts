/**
 * The supervisor: a node:cluster primary that keeps N workers of an app alive and replaces them without dropping a
 * request. Workers share the listening port (cluster). By default (readyOn 'auto') a worker that runs the runtime
 * layer is ready when it says so ({ nodescale: 'ready' }, once its readiness turns true); any other app once it
 * listens, or when it calls process.send('ready') first.
 *
 * - Crashes are restarted per slot with exponential backoff and jitter (restart-policy.ts); a crash loop stops the
 *   slot and is reported. If every slot is stopped, the supervisor exits 1.
 * - reload(): slot by slot, a new worker is started; once it is ready and has stayed up for `stabilityMs`, the old one
 *   is drained (SIGTERM: the runtime's graceful shutdown) and the next slot follows. If a new worker exits or is not
 *   ready in time, the reload stops there: it is killed, and the old workers keep serving ('rolled-back'). Once every
 *   slot is replaced, the new generation stays on probation until each new worker has lived `probationMs` since it
 *   was ready: a crash in that time fails the reload too (the old workers are gone by then: it is reported, and the
 *   slot restarts under the crash policy). Reloads asked for during a reload are queued, not interleaved.
 * - A worker that dies while its replacement is starting is not restarted: the replacement takes the slot, or, if it
 *   fails, the slot restarts under the crash policy. Every child is in a slot (current or replacing) or draining,
 *   and status() lists them all.
 * - stop(): every worker drained in parallel; SIGKILL only after `graceMs`, and reported. A start still waiting for
 *   its workers settles at once.
 *
 * Longer than the ~400 lines a file keeps to, on purpose: it is one state machine over its slots and their workers
 * (a crash, a restart's timer, a reload, a scale, a memory replacement and a stop all read and change the same slots,
 * in one queue of changes), and split across files its invariants would be too (every child is in a slot or draining;
 * one change at a time). What is not that state is elsewhere: what it reports (status.ts), when a worker is ready
 * (readiness.ts), when to restart (restart-policy.ts), its options (options.ts), its sockets (control.ts,
 * metrics.ts).
 */
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter, once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { LogLevel } from '../logger.ts';
import { removeSocket } from '../socket/unix-socket.ts';
import {
  ANNOUNCE_ENV,
  WORKER_ENV,
  isSampleDetail,
  workerMessage,
  writeAnnouncement,
  type HttpServerTimeouts,
  type SupervisorEvent,
  type SupervisorEventBody,
  type SupervisorMessage,
  type WorkerSampleEvent,
  type WorkerMetricObject,
} from '../ipc.ts';
import { NodescaleError } from '../errors.ts';
import { eachLine } from '../lines.ts';
import { sibling } from '../module-file.ts';
import { resolveSupervisorOptions, type ResolvedSupervisorOptions, type SupervisorOptions } from './options.ts';
import { PERF_FLAGS, PerfMaps } from './perf-maps.ts';
import { notReadyWhy, READY_RULES, type ReadyRule } from './readiness.ts';
import { RestartPolicy } from './restart-policy.ts';
import type {
  ReloadOutcome,
  ReloadProgress,
  ReloadStatus,
  WorkerMetrics,
  WorkerServers,
  WorkerState,
  WorkerStatus,
} from './status.ts';

const DRAIN_PRELOAD = sibling('./drain-preload', import.meta.url);

export type { WorkerMetricObject };
export type { ReloadOutcome, ReloadProgress, ReloadStatus, WorkerMetrics, WorkerServers, WorkerState, WorkerStatus };

interface Handle {
  worker: Worker;
  slot: number;
  generation: number;
  state: WorkerState;
  startedAt: number;
  /** When it said ready (Date.now()), or null. */
  readyAt: number | null;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  lastSample: { eventLoopDelayP99Ms: number; requestsPerSecond: number } | null;
  /** Whether the worker runs nodescale/runtime (it said so, or said ready the runtime's way): it answers metrics requests. */
  runtime: boolean;
  /** Its admin console's socket, once it listens. */
  adminSocket: string | null;
  /** The crash bundle the worker's runtime said it wrote, as it was dying (shown with its crash). */
  crashBundle: string | null;
  /** Consecutive memory checks above the limit. */
  strikes: number;
  /** It was stopped on purpose (drained, or killed as a failed replacement), not crashed. */
  drained: boolean;
  /** The last line of its stderr that names an error (`SyntaxError: …`), to say why it did not start. */
  lastError: string | null;
}

interface Slot {
  index: number;
  policy: RestartPolicy;
  current: Handle | null;
  /** The new worker of a replacement in progress (reload, memory), until it takes the slot or fails. */
  replacing: Handle | null;
  /** The previous generation's worker, parked during a reload's probation (rollback 'parked'). */
  parked: Handle | null;
  restarts: number;
  failed: string | null;
  restartTimer: NodeJS.Timeout | null;
}

function rssOf(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class Supervisor extends EventEmitter {
  readonly #options: ResolvedSupervisorOptions;

  /** The options resolved: every default filled in (`workers: 'auto'` is a count here). */
  get options(): Readonly<ResolvedSupervisorOptions> {
    return this.#options;
  }

  /**
   * Publishes what changed ('event', a SupervisorEvent of ipc.ts), for whatever shows it. Listeners that throw are
   * the supervisor's own bug: the error is logged, the supervisor goes on.
   */
  #publish(event: SupervisorEventBody): void {
    if (this.listenerCount('event') === 0) return;
    try {
      this.emit('event', { time: Date.now(), ...event } satisfies SupervisorEvent);
    } catch (error) {
      this.#log('an event listener failed', { error: (error as Error).message }, 'error');
    }
  }

  /** A line of the supervisor's own, through its logger (`log`, the one Logger shape). */
  #log(message: string, fields?: Record<string, unknown>, level: LogLevel = 'info'): void {
    this.#options.log(level, message, fields);
  }
  readonly #slots: Slot[] = [];
  #generation = 1;
  #stopping = false;
  #memoryTimer: NodeJS.Timeout | null = null;
  /** Workers being drained (by a reload, a replacement, a scale-down): stop() waits for them rather than killing them. */
  readonly #draining = new Set<Handle>();
  /** The queue of changes to the slots, one at a time: reloads, scaling, memory replacements. Its tail's outcome. */
  #changes: Promise<ReloadOutcome> = Promise.resolve({ ok: true, replaced: 0 });
  #forks = 0;
  /** With --perf: the workers' perf map files, removed in time (perf-maps.ts). */
  readonly #perfMaps = new PerfMaps();
  /** Settles start() (and the slots it waits for) once stop() has begun. */
  #stopRequested!: () => void;
  readonly #stopped = new Promise<void>((resolve) => (this.#stopRequested = resolve));
  /** The last reload's verdict, for status(). */
  #lastReload: ReloadStatus | null = null;
  /** Every worker was ready once (start() resolved 'ready'). */
  #started = false;
  /** When this supervisor was made. */
  readonly since = new Date();
  /** Requests to the workers (metrics, servers) waiting for an answer, by id. */
  readonly #requests = new Map<number, (answer: unknown) => void>();
  #requestId = 0;
  /** The readiness rules already named in the log (each once). */
  readonly #rulesSaid = new Set<ReadyRule>();

  constructor(options: SupervisorOptions) {
    super();
    this.#options = resolveSupervisorOptions(options);
  }

  /**
   * Starts the workers; resolves 'ready' when all are ready, or 'stopped' as soon as stop() begins; rejects when a
   * slot cannot start (its crash loop).
   */
  async start(): Promise<'ready' | 'stopped'> {
    const execArgv = [
      ...(this.#options.httpDrain ? ['--import', DRAIN_PRELOAD.href] : []),
      ...(this.#options.perf ? PERF_FLAGS : []),
      ...this.#options.execArgv,
    ];
    cluster.setupPrimary({ exec: this.#options.app, args: this.#options.args, execArgv, silent: true });
    for (let i = 0; i < this.#options.workers; i++) this.#slots.push(this.#newSlot(i));
    const started = await Promise.race([
      Promise.all(this.#slots.map((slot) => this.#startSlot(slot))).then(() => 'ready' as const),
      this.#stopped.then(() => 'stopped' as const),
    ]);
    if (started === 'stopped') return started;
    this.#started = true;
    if (this.#options.maxMemoryBytes > 0) {
      this.#memoryTimer = setInterval(() => this.#checkMemory(), this.#options.memoryCheckMs);
      this.#memoryTimer.unref();
    }
    return 'ready';
  }

  #newSlot(index: number): Slot {
    return {
      index,
      policy: new RestartPolicy(this.#options.restart),
      current: null,
      replacing: null,
      parked: null,
      restarts: 0,
      failed: null,
      restartTimer: null,
    };
  }

  /** A worker over the memory limit three checks in a row is replaced like a reload replaces it: never mid-request. */
  #checkMemory(): void {
    for (const slot of this.#slots) {
      const handle = slot.current;
      if (handle === null || handle.state !== 'ready') continue;
      const rss = rssOf(handle.worker.process.pid!) ?? 0;
      handle.strikes = rss > this.#options.maxMemoryBytes ? handle.strikes + 1 : 0;
      if (handle.strikes !== 3) continue;
      this.#log(
        `worker ${slot.index} (pid ${handle.worker.process.pid}) uses ${Math.round(rss / 1048576)} MiB, over --max-memory: replacing it`,
        undefined,
        'warn',
      );
      this.emit('memory', { slot: slot.index, rss });
      this.#publish({ kind: 'memory', slot: slot.index, pid: handle.worker.process.pid!, rssBytes: rss });
      this.#changes = this.#changes.then(async () => {
        if (slot.current !== handle || this.#stopping) return { ok: true, replaced: 0 };
        const outcome = await this.#replaceSlot(slot, handle.generation);
        this.#log(
          outcome === null
            ? `worker ${slot.index} replaced (memory): pid ${slot.current?.worker.process.pid}`
            : `worker ${slot.index} not replaced (memory): ${outcome}`,
          undefined,
          outcome === null ? 'info' : 'warn',
        );
        return outcome === null
          ? { ok: true, replaced: 1 }
          : { ok: false, reason: outcome, replaced: 0, failure: 'rolled-back' };
      });
    }
  }

  /** Resolves once the slot has a ready worker (after restarts if need be), or stop() begins; rejects if it gives up. */
  #startSlot(slot: Slot): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      // Follows whichever worker fills the slot: a failed start is restarted by the crash handler.
      const follow = (handle: Handle) => {
        handle.ready.then(resolve, () => {
          void handle.exited.then(() => {
            if (slot.failed !== null)
              reject(new NodescaleError('NS_ERR_APP_CRASH_LOOP', `worker ${slot.index} cannot start: ${slot.failed}`));
            else this.once(`restarted:${slot.index}`, () => follow(slot.current!));
          });
        });
      };
      slot.current = this.#fork(slot, this.#generation);
      follow(slot.current);
    });
    return Promise.race([started, this.#stopped]);
  }

  #fork(slot: Slot, generation: number): Handle {
    // The announce socket is the supervisor's own: a worker announces over IPC (ipc.ts).
    const env: Record<string, string> = {
      [WORKER_ENV.slot]: String(slot.index),
      [WORKER_ENV.supervised]: '1',
      [ANNOUNCE_ENV]: '',
    };
    const adminSocket =
      this.#options.consoleSocketPrefix === null
        ? null
        : `${this.#options.consoleSocketPrefix}-w${slot.index}.${++this.#forks}.sock`;
    if (adminSocket !== null) env[WORKER_ENV.adminSocket] = adminSocket;
    const worker = cluster.fork(env);
    if (this.#options.perf) this.#perfMaps.started(worker.process.pid!, worker);
    let markReady!: () => void;
    let markFailed!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    ready.catch(() => {});
    const handle: Handle = {
      worker,
      slot: slot.index,
      generation,
      state: 'starting',
      startedAt: Date.now(),
      readyAt: null,
      ready,
      exited: new Promise((resolve) => worker.once('exit', (code, signal) => resolve({ code, signal }))),
      lastSample: null,
      runtime: false,
      adminSocket: null,
      crashBundle: null,
      strikes: 0,
      drained: false,
      lastError: null,
    };
    this.#publish({ kind: 'started', slot: slot.index, pid: worker.process.pid!, generation });
    this.#pipe(worker.process.stdout, slot.index, worker.process.pid!, 'stdout');
    this.#pipe(worker.process.stderr, slot.index, worker.process.pid!, 'stderr', handle);
    const readyOn = this.#options.readyOn;
    const timer = setTimeout(() => {
      if (handle.state !== 'starting') return;
      this.#log(
        `worker ${slot.index} (pid ${worker.process.pid}) not ready within ${this.#options.readyTimeoutMs} ms (${notReadyWhy(readyOn, handle.runtime)}): killing it`,
        undefined,
        'error',
      );
      markFailed(new Error('ready timeout'));
      worker.process.kill('SIGKILL');
    }, this.#options.readyTimeoutMs);
    const becomeReady = (rule: ReadyRule) => this.#onReady(handle, markReady, timer, rule);
    // 'auto': a worker that started nodescale/runtime said so before it listened (ipc.ts RuntimeMessage); the cluster's
    // 'listening' comes after the app's own listen callback, so a runtime started there is seen first too.
    if (readyOn !== 'message')
      worker.once('listening', () => (readyOn === 'listening' || !handle.runtime) && becomeReady('listening'));
    worker.on('message', (value: unknown) => {
      if (value === 'ready') return becomeReady('message');
      const message = workerMessage(value);
      switch (message?.nodescale) {
        case 'runtime':
          handle.runtime = true;
          return;
        case 'ready':
          handle.runtime = true;
          return becomeReady('runtime');
        case 'sample':
          handle.lastSample = {
            eventLoopDelayP99Ms: message.eventLoopDelayP99Ms,
            requestsPerSecond: message.requestsPerSecond,
          };
          if (this.listenerCount('sample') > 0)
            this.emit('sample', {
              slot: slot.index,
              pid: worker.process.pid!,
              generation,
              time: Date.now(),
              eventLoopDelayP99Ms: message.eventLoopDelayP99Ms,
              requestsPerSecond: message.requestsPerSecond,
              detail: isSampleDetail(message.detail) ? message.detail : null,
            } satisfies WorkerSampleEvent);
          return;
        case 'runtime-event':
          if (message.kind === 'crash-bundle') {
            handle.crashBundle = message.detail;
            return;
          }
          return this.#publish({
            kind: message.kind,
            slot: slot.index,
            pid: worker.process.pid!,
            detail: message.detail,
          });
        case 'metrics':
          return this.#requests.get(message.id)?.(message.metrics ?? null);
        case 'servers':
          return this.#requests.get(message.id)?.(message.servers);
        case 'parked':
        case 'unparked':
        case 'left':
        case 'flushed':
          return this.#requests.get(message.id)?.(message.error ?? 'ok');
        case 'admin':
          if (message.socketPath === adminSocket) handle.adminSocket = adminSocket;
          return;
        case 'listening':
          return writeAnnouncement({ ...message, slot: slot.index });
      }
    });
    void handle.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const expected = handle.state === 'stopping';
      handle.drained = expected;
      handle.state = 'exited';
      // A crashed worker leaves its console's socket behind.
      if (adminSocket !== null) removeSocket(adminSocket);
      // Why it did not start is in its last stderr lines, which may come after its exit: wait for them, briefly.
      const said =
        handle.readyAt === null && worker.process.stderr !== null
          ? Promise.race([once(worker.process.stderr, 'close'), new Promise((resolve) => setTimeout(resolve, 200))])
          : Promise.resolve();
      void said
        .catch(() => {})
        .then(() =>
          markFailed(
            new Error(
              `exited (${signal ?? code}) before it was ready${handle.lastError === null ? '' : `: ${handle.lastError}`}`,
            ),
          ),
        );
      if (expected || this.#stopping) return;
      this.#onCrash(slot, handle, code, signal);
    });
    return handle;
  }

  #onReady(handle: Handle, markReady: () => void, timer: NodeJS.Timeout, rule: ReadyRule): void {
    if (handle.state !== 'starting') return;
    clearTimeout(timer);
    handle.state = 'ready';
    handle.readyAt = Date.now();
    if (!this.#rulesSaid.has(rule)) {
      this.#rulesSaid.add(rule);
      this.#log(
        this.#options.readyOn === 'auto'
          ? READY_RULES[rule]
          : `readiness (--ready-on ${this.#options.readyOn}): ${rule}`,
      );
    }
    this.#log(`worker ${handle.slot} ready`, { pid: handle.worker.process.pid, generation: handle.generation });
    this.#publish({ kind: 'ready', slot: handle.slot, pid: handle.worker.process.pid!, generation: handle.generation });
    markReady();
  }

  #onCrash(slot: Slot, handle: Handle, code: number | null, signal: string | null): void {
    if (slot.current !== handle) return; // the new worker of a replacement: #replaceSlot handles its failure
    if (slot.replacing !== null) {
      // Its replacement is already starting: it takes the slot, or #replaceSlot restarts the slot if it fails.
      this.#log(
        `worker ${slot.index} (pid ${handle.worker.process.pid}) exited (${signal ?? `code ${code}`}) while its replacement starts: not restarted`,
        undefined,
        'warn',
      );
      return;
    }
    this.#restartAfterCrash(slot, handle, code, signal);
  }

  #restartAfterCrash(slot: Slot, handle: Handle, code: number | null, signal: string | null): void {
    const uptime = Date.now() - handle.startedAt;
    const decision = slot.policy.onCrash(uptime);
    if (!decision.restart) {
      slot.failed = decision.reason;
      slot.current = null;
      this.#log(`worker ${slot.index} stopped restarting: ${decision.reason}`, { exit: signal ?? code }, 'error');
      this.emit('crash-loop', { slot: slot.index, reason: decision.reason });
      this.#publish({ kind: 'crash-loop', slot: slot.index, reason: decision.reason });
      if (this.#slots.every((s) => s.failed !== null)) this.emit('all-failed');
      return;
    }
    this.#log(
      `worker ${slot.index} exited (${signal ?? `code ${code}`}) after ${uptime} ms: restarting in ${decision.delayMs} ms`,
      { attempt: decision.attempt },
      'warn',
    );
    this.emit('crash', { slot: slot.index, code, signal, delayMs: decision.delayMs });
    this.#publish({
      kind: 'crash',
      slot: slot.index,
      pid: handle.worker.process.pid!,
      code,
      signal,
      restartInMs: decision.delayMs,
      bundle: handle.crashBundle,
    });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.#stopping || slot.current !== handle) return;
      slot.restarts++;
      slot.current = this.#fork(slot, handle.generation);
      this.emit(`restarted:${slot.index}`);
    }, decision.delayMs);
  }

  /** Drains a worker: SIGTERM (the runtime's graceful shutdown), SIGKILL after the grace period. */
  async #stopWorker(handle: Handle): Promise<'clean' | 'killed'> {
    if (handle.state === 'exited') return 'clean';
    handle.state = 'stopping';
    this.#draining.add(handle);
    void handle.exited.then(() => this.#draining.delete(handle));
    handle.worker.process.kill('SIGTERM');
    const killer = setTimeout(() => {
      this.#log(
        `worker ${handle.slot} (pid ${handle.worker.process.pid}) still running after ${this.#options.graceMs} ms: SIGKILL`,
        undefined,
        'warn',
      );
      handle.worker.process.kill('SIGKILL');
    }, this.#options.graceMs);
    const { signal } = await handle.exited;
    clearTimeout(killer);
    return signal === 'SIGKILL' ? 'killed' : 'clean';
  }

  /** Rolling reload; queued behind one already running. */
  reload(): Promise<ReloadOutcome> {
    this.#changes = this.#changes.then(() => this.#reload());
    return this.#changes;
  }

  async #reload(): Promise<ReloadOutcome> {
    const generation = ++this.#generation;
    let replaced = 0;
    const settle = (state: ReloadStatus['state'], reason: string | null) => {
      this.#lastReload = { generation, state, reason };
      this.#publish({ kind: 'reload', generation, state, reason });
    };
    settle('replacing', null);
    // The previous generation is parked (not stopped) until probation passes; the drain preload is what parks it.
    const park = this.#options.rollback === 'parked' && this.#options.httpDrain;
    this.#log(`reload: generation ${generation}`);
    const fresh: Handle[] = [];
    for (const slot of this.#slots) {
      if (this.#stopping) {
        settle('interrupted', 'stopping');
        return { ok: false, reason: 'stopping', replaced, failure: 'stopping' };
      }
      if (slot.failed !== null) continue;
      const failure = await this.#replaceSlot(slot, generation, park);
      if (failure !== null) {
        this.#log(`reload rolled back: ${failure}; the old workers keep serving`, undefined, 'warn');
        this.#generation--;
        settle('rolled-back', failure);
        return { ok: false, reason: failure, replaced, failure: 'rolled-back' };
      }
      fresh.push(slot.current!);
      replaced++;
      const of = this.#slots.filter((s) => s.failed === null).length;
      const pid = slot.current!.worker.process.pid;
      this.emit('reload-progress', { generation, slot: slot.index, pid, replaced, of } satisfies ReloadProgress);
      this.#publish({ kind: 'replaced', generation, slot: slot.index, pid: pid!, replaced, of });
    }
    this.#log(
      `reload: ${replaced} worker(s) replaced; generation ${generation} on probation for ${this.#options.probationMs} ms`,
    );
    settle('probation', null);
    const lastReady = Math.max(0, ...fresh.map((h) => h.readyAt ?? Date.now()));
    this.emit('reload-progress', {
      generation,
      probationLeftMs: Math.max(0, lastReady + this.#options.probationMs - Date.now()),
    } satisfies ReloadProgress);
    const crash = await this.#probation(fresh);
    const parked = this.#slots.filter((slot) => slot.parked !== null);
    if (crash !== null && parked.length > 0 && !this.#stopping) {
      const back = await this.#rollBack(parked);
      const reason = `generation ${generation} failed its probation: ${crash}; rolled back: ${back} worker(s) of generation ${generation - 1} serve again`;
      this.#log(`reload failed: ${reason}`, undefined, 'error');
      this.#generation--;
      settle('rolled-back', reason);
      return { ok: false, reason, replaced, failure: 'rolled-back' };
    }
    // Passed (or no rollback to make): the parked generation goes.
    await Promise.all(
      parked.map((slot) => {
        const old = slot.parked!;
        slot.parked = null;
        return this.#stopParked(old);
      }),
    );
    if (crash !== null) {
      const reason = `generation ${generation} failed its probation: ${crash}`;
      this.#log(
        `reload failed: ${reason}; the slot restarts under the crash policy (the old workers are gone)`,
        undefined,
        'error',
      );
      settle(this.#stopping ? 'interrupted' : 'failed-probation', reason);
      return { ok: false, reason, replaced, failure: this.#stopping ? 'stopping' : 'probation' };
    }
    settle('passed', null);
    this.#log(`reload done: ${replaced} worker(s) replaced, generation ${generation} passed its probation`);
    return { ok: true, replaced };
  }

  /**
   * Brings the parked generation back: each slot's parked worker accepts again and takes the slot, and the new
   * worker there is drained (or, crashed, is not restarted). Returns how many came back; a slot whose parked worker
   * died meanwhile keeps its new one (restarted under the crash policy if it crashed).
   */
  async #rollBack(slots: Slot[]): Promise<number> {
    let back = 0;
    await Promise.all(
      slots.map(async (slot) => {
        const old = slot.parked!;
        slot.parked = null;
        if (old.state === 'exited') return;
        const fresh = slot.current;
        // At once, before any await: a restart the crash policy scheduled for the new worker sees it is not current.
        slot.current = old;
        if (slot.restartTimer !== null) {
          clearTimeout(slot.restartTimer);
          slot.restartTimer = null;
        }
        const answer = await this.#ask(old, 'unpark', 5000);
        if (answer !== 'ok') {
          this.#log(
            `worker ${slot.index} (pid ${old.worker.process.pid}) could not be brought back: ${String(answer ?? 'no answer')}`,
            undefined,
            'error',
          );
          slot.current = fresh;
          await this.#stopParked(old);
          if (fresh !== null && fresh.state === 'exited' && !this.#stopping)
            this.#restartAfterCrash(slot, fresh, null, 'rollback failed');
          return;
        }
        old.state = 'ready';
        // A slot the crash policy gave up on while its new worker crashed: it serves again.
        slot.failed = null;
        back++;
        if (fresh !== null && fresh.state !== 'exited') await this.#stopWorker(fresh);
      }),
    );
    return back;
  }

  /** Waits until each worker has lived probationMs since it was ready; null, or how the first one that died exited. */
  async #probation(handles: Handle[]): Promise<string | null> {
    const never = new Promise<never>(() => {});
    // A worker drained on purpose during probation (a scale down, a memory replacement) is not a failure.
    const deaths = handles.map((h) =>
      h.exited.then(({ code, signal }) =>
        h.drained
          ? never
          : `worker ${h.slot} (pid ${h.worker.process.pid}) exited (${signal ?? `code ${code}`}) ${Date.now() - (h.readyAt ?? h.startedAt)} ms after it was ready`,
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const lastReady = Math.max(0, ...handles.map((h) => h.readyAt ?? Date.now()));
    const passed = new Promise<null>(
      (resolve) =>
        (timer = setTimeout(() => resolve(null), Math.max(0, lastReady + this.#options.probationMs - Date.now()))),
    );
    const verdict = await Promise.race([passed, ...deaths, this.#stopped.then(() => 'the supervisor is stopping')]);
    clearTimeout(timer);
    return verdict;
  }

  /**
   * Replaces the slot's worker: a new one must be ready and stay up for the stability window before the old one is
   * drained, or parked (`park`: a reload with rollback 'parked'). Returns null, or why the new one failed (it is
   * killed; the old one keeps serving).
   */
  async #replaceSlot(slot: Slot, generation: number, park = false): Promise<string | null> {
    const old = slot.current;
    // A slot waiting out its backoff after a crash: the new worker is its restart.
    if (slot.restartTimer !== null) {
      clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
    }
    const fresh = this.#fork(slot, generation);
    slot.replacing = fresh;
    try {
      await fresh.ready;
      // Ready is not enough: it must stay up for the stability window.
      const crashed = await Promise.race([
        fresh.exited.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), this.#options.stabilityMs)),
      ]);
      if (crashed) throw new Error(`the new worker exited within ${this.#options.stabilityMs} ms of being ready`);
    } catch (error) {
      slot.replacing = null;
      fresh.state = 'stopping';
      fresh.worker.process.kill('SIGKILL');
      // The old worker died meanwhile: nothing serves in this slot, so it restarts as after a crash.
      if (old !== null && old.state === 'exited' && slot.current === old && !this.#stopping)
        this.#restartAfterCrash(slot, old, null, 'its replacement failed');
      return `worker ${slot.index} of generation ${generation} failed: ${(error as Error).message}`;
    }
    slot.replacing = null;
    slot.current = fresh;
    if (old !== null) {
      if (park && (await this.#park(old))) slot.parked = old;
      else await this.#stopWorker(old);
    }
    return null;
  }

  /** Changes the number of workers: new slots start (and are waited for), the highest ones are drained. Queued. */
  scale(workers: number): Promise<{ workers: number }> {
    const next = this.#changes.then(async () => {
      while (this.#slots.length < workers && !this.#stopping) {
        const slot = this.#newSlot(this.#slots.length);
        this.#slots.push(slot);
        await this.#startSlot(slot);
      }
      while (this.#slots.length > workers) {
        const slot = this.#slots.pop()!;
        if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
        if (slot.current !== null) await this.#stopWorker(slot.current);
      }
      this.#log(`scaled to ${this.#slots.length} worker(s)`);
      this.#publish({ kind: 'scale', workers: this.#slots.length });
      return { ok: true as const, replaced: 0 };
    });
    this.#changes = next.catch((error: Error): ReloadOutcome => ({
      ok: false,
      reason: error.message,
      replaced: 0,
      failure: 'scale',
    }));
    return next.then(() => ({ workers: this.#slots.length }));
  }

  async stop(): Promise<{ killed: number }> {
    this.#stopping = true;
    this.#stopRequested();
    if (this.#memoryTimer !== null) clearInterval(this.#memoryTimer);
    for (const slot of this.#slots) if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
    const handles = this.#slots
      .flatMap((slot) => [slot.current, slot.replacing, slot.parked])
      .filter((h): h is Handle => h !== null);
    // Workers already draining get their own grace period to finish; a second SIGTERM would force them.
    const draining = [...this.#draining].filter((h) => !handles.includes(h));
    const results = await Promise.all([
      ...handles.map((h) => (h.state === 'parked' ? this.#stopParked(h) : this.#stopWorker(h))),
      ...draining.map((h) => h.exited.then(() => 'clean' as const)),
    ]);
    // Anything left (a new worker of a reload that was cut short): no orphans.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    this.#perfMaps.removeAll();
    return { killed: results.filter((r) => r === 'killed').length };
  }

  /** Every worker that is a child of this supervisor: each slot's current one, a replacement starting, those draining. */
  status(): WorkerStatus[] {
    const handles = [
      ...this.#slots.flatMap((slot) => [slot.current, slot.replacing, slot.parked]),
      ...this.#draining,
    ].filter((h): h is Handle => h !== null && h.state !== 'exited');
    return [...new Set(handles)]
      .sort((a, b) => a.slot - b.slot || a.generation - b.generation)
      .map((h) => {
        const slot = this.#slots[h.slot];
        return {
          slot: h.slot,
          pid: h.worker.process.pid!,
          generation: h.generation,
          state: h.state,
          uptimeSeconds: Math.round((Date.now() - h.startedAt) / 1000),
          restarts: slot?.restarts ?? 0,
          rssBytes: rssOf(h.worker.process.pid!),
          eventLoopDelayP99Ms: h.lastSample?.eventLoopDelayP99Ms ?? null,
          requestsPerSecond: h.lastSample?.requestsPerSecond ?? null,
        };
      });
  }

  /**
   * Asks every worker running nodescale/runtime for its metrics, all at once; a worker that has not answered within
   * `timeoutMs` is reported with null, never waited for longer: a slow or stuck worker does not hold up the scrape.
   */
  async workerMetrics(timeoutMs: number): Promise<WorkerMetrics[]> {
    const answers = await this.#askWorkers('metrics', timeoutMs, (h) => h.runtime);
    return answers.map(({ slot, pid, answer }) => ({ slot, pid, metrics: answer as WorkerMetricObject[] | null }));
  }

  /**
   * Asks every worker which HTTP servers it listens with, and their timeouts as they are now (the drain preload
   * answers: null from a worker started without it, --no-http-drain, or that has not answered within `timeoutMs`).
   */
  async workerServers(timeoutMs: number): Promise<WorkerServers[]> {
    const answers = await this.#askWorkers('servers', timeoutMs, () => this.#options.httpDrain);
    return answers.map(({ slot, pid, answer }) => ({ slot, pid, servers: answer as HttpServerTimeouts[] | null }));
  }

  #askWorkers(kind: SupervisorMessage['nodescale'], timeoutMs: number, answers: (h: Handle) => boolean) {
    const handles = this.#slots
      .map((slot) => slot.current)
      .filter((h): h is Handle => h !== null && h.state !== 'exited');
    return Promise.all(
      handles.map(async (h) => {
        const pid = h.worker.process.pid!;
        if (!answers(h) || !h.worker.isConnected()) return { slot: h.slot, pid, answer: null };
        return { slot: h.slot, pid, answer: await this.#ask(h, kind, timeoutMs) };
      }),
    );
  }

  /** One request to one worker: its answer, or null when it has not answered within `timeoutMs`. */
  async #ask(h: Handle, kind: SupervisorMessage['nodescale'], timeoutMs: number): Promise<unknown> {
    const id = ++this.#requestId;
    const answer = await new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      this.#requests.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      const request: SupervisorMessage = { nodescale: kind, id };
      h.worker.send(request, (error: Error | null) => error && resolve(null));
    });
    this.#requests.delete(id);
    return answer;
  }

  /**
   * Stops a parked worker without losing a connection node:cluster was offering it: it leaves the round-robin handle
   * (answered once its connections are done), then a round trip on its channel after every offer made before, then
   * SIGTERM. A worker that does not answer is stopped anyway.
   */
  async #stopParked(h: Handle): Promise<'clean' | 'killed'> {
    if (h.state !== 'exited' && h.worker.isConnected()) {
      await this.#ask(h, 'leave', this.#options.graceMs);
      await this.#ask(h, 'flush', 2000);
    }
    return this.#stopWorker(h);
  }

  /** Parks a worker (the drain preload stops its accepting); false when it did not say it did within 5 s. */
  async #park(h: Handle): Promise<boolean> {
    if (h.state === 'exited' || !h.worker.isConnected()) return false;
    const answer = await this.#ask(h, 'park', 5000);
    if (answer !== 'ok') return false;
    h.state = 'parked';
    return true;
  }

  /** The admin console socket of the worker in `slot`, or why there is none. */
  workerConsole(slot: number): { socketPath: string; pid: number } | { error: string } {
    const handle = this.#slots[slot]?.current;
    if (handle === undefined || handle === null)
      return { error: `there is no worker ${slot} (workers: 0 to ${this.#slots.length - 1})` };
    if (this.#options.consoleSocketPrefix === null)
      return { error: 'the workers have no console: start nodescale run with --console' };
    if (handle.adminSocket === null)
      return { error: `worker ${slot} has no console: it does not run nodescale/runtime, or it is not listening yet` };
    return { socketPath: handle.adminSocket, pid: handle.worker.process.pid! };
  }

  /** Whether start() has seen every worker ready (what `nodescale start` waits for). */
  get started(): boolean {
    return this.#started;
  }

  /** The last reload's verdict (null before the first). */
  get lastReload(): ReloadStatus | null {
    return this.#lastReload;
  }

  failedSlots(): { slot: number; reason: string }[] {
    return this.#slots.filter((s) => s.failed !== null).map((s) => ({ slot: s.index, reason: s.failed! }));
  }

  /** Passes a worker's output on line by line (cut at 16 KiB: a worker cannot grow our buffers). */
  #pipe(stream: Readable | null, slot: number, pid: number, kind: 'stdout' | 'stderr', handle?: Handle): void {
    if (stream === null) return;
    const from = { slot, pid, stream: kind };
    eachLine(stream, (line) => {
      // Only while it starts: the reason it did not (an error's own line, as Node prints it at a crash).
      if (handle !== undefined && handle.readyAt === null && /^[A-Z]\w*(Error|Exception)\b/.test(line))
        handle.lastError = line.slice(0, 300);
      this.#options.output(line, from);
    });
  }
}
