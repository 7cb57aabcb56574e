/**
 * Samples the process every interval. Each figure covers that interval only, never a mean since start, so that a
 * short block of the loop is not averaged away: event-loop delay p50/p99/max (perf_hooks.monitorEventLoopDelay, reset
 * every interval), event-loop utilisation (delta of performance.eventLoopUtilization), CPU %, memory, GC pauses by
 * kind, active handles, and the HTTP counters the runtime feeds in.
 */
import {
  constants,
  monitorEventLoopDelay,
  performance,
  PerformanceObserver,
  type ELDHistogram,
  type EventLoopUtilization,
} from 'node:perf_hooks';
import v8 from 'node:v8';

export type GcKind = 'minor' | 'major' | 'incremental' | 'weakcb';

export interface RuntimeSample {
  /** Epoch ms at the end of the interval. */
  time: number;
  intervalMs: number;
  eventLoop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number; utilization: number };
  /** CPU of the whole process over the interval, % of one core (can pass 100 with worker threads). */
  cpu: { percent: number };
  memory: {
    rss: number;
    heapUsed: number;
    heapTotal: number;
    heapLimit: number;
    external: number;
    arrayBuffers: number;
  };
  /** Pauses in the interval, by kind. */
  gc: { count: number; pauseMs: number; byKind: Record<GcKind, { count: number; pauseMs: number }> };
  /** Active libuv handles and requests (process.getActiveResourcesInfo()). */
  activeResources: number;
  http: { requestsPerSecond: number; shedPerSecond: number; inFlight: number };
}

export interface HttpCounters {
  /** Requests completed since the last sample. */
  takeCompleted(): number;
  takeShed(): number;
  inFlight(): number;
}

const GC_KINDS: Record<number, GcKind> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** A sample's GC figures before any collection (a new interval starts from these). */
export const emptyGc = (): RuntimeSample['gc'] => ({
  count: 0,
  pauseMs: 0,
  byKind: {
    minor: { count: 0, pauseMs: 0 },
    major: { count: 0, pauseMs: 0 },
    incremental: { count: 0, pauseMs: 0 },
    weakcb: { count: 0, pauseMs: 0 },
  },
});

export class Sampler {
  readonly #intervalMs: number;
  readonly #http: HttpCounters;
  readonly #onSample: (sample: RuntimeSample) => void;
  readonly #onMajorGc: (heapUsedAfter: number, time: number) => void;
  #delay: ELDHistogram | null = null;
  #resolutionMs = 10;
  #gcObserver: PerformanceObserver | null = null;
  #timer: NodeJS.Timeout | null = null;
  #elu: EventLoopUtilization | null = null;
  #cpu: NodeJS.CpuUsage | null = null;
  #last = 0;
  #gc = emptyGc();
  readonly #heapLimit = v8.getHeapStatistics().heap_size_limit;

  constructor(
    intervalMs: number,
    http: HttpCounters,
    onSample: (sample: RuntimeSample) => void,
    onMajorGc: (heapUsedAfter: number, time: number) => void,
  ) {
    this.#intervalMs = intervalMs;
    this.#http = http;
    this.#onSample = onSample;
    this.#onMajorGc = onMajorGc;
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  start(): void {
    if (this.#timer !== null) return;
    // A 10 ms resolution timer, or finer for short sampling intervals.
    this.#resolutionMs = Math.max(1, Math.min(10, Math.floor(this.#intervalMs / 20)));
    this.#delay = monitorEventLoopDelay({ resolution: this.#resolutionMs });
    this.#delay.enable();
    this.#gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = GC_KINDS[(entry as { detail?: { kind?: number } }).detail?.kind ?? -1];
        if (kind === undefined) continue;
        this.#gc.count++;
        this.#gc.pauseMs += entry.duration;
        this.#gc.byKind[kind].count++;
        this.#gc.byKind[kind].pauseMs += entry.duration;
        if (kind === 'major') this.#onMajorGc(v8.getHeapStatistics().used_heap_size, Date.now());
      }
    });
    this.#gcObserver.observe({ entryTypes: ['gc'] });
    this.#elu = performance.eventLoopUtilization();
    this.#cpu = process.cpuUsage();
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#delay?.disable();
    this.#delay = null;
    this.#gcObserver?.disconnect();
    this.#gcObserver = null;
  }

  #sample(): void {
    const now = performance.now();
    const intervalMs = now - this.#last;
    this.#last = now;
    const delay = this.#delay!;
    // The histogram records each whole timer interval in ns, resolution included: the delay is what passes it.
    const ns = (v: number) =>
      delay.count === 0 || !Number.isFinite(v) ? 0 : Math.max(0, v / 1e6 - this.#resolutionMs);
    const eventLoop = {
      delayP50Ms: ns(delay.percentile(50)),
      delayP99Ms: ns(delay.percentile(99)),
      delayMaxMs: ns(delay.max),
      utilization: 0,
    };
    delay.reset();
    const elu = performance.eventLoopUtilization();
    eventLoop.utilization = performance.eventLoopUtilization(elu, this.#elu!).utilization;
    this.#elu = elu;
    const cpu = process.cpuUsage(this.#cpu!);
    this.#cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const gc = this.#gc;
    this.#gc = emptyGc();
    const seconds = intervalMs / 1000;
    this.#onSample({
      time: Date.now(),
      intervalMs,
      eventLoop,
      cpu: { percent: ((cpu.user + cpu.system) / 1000 / intervalMs) * 100 },
      memory: {
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        heapTotal: memory.heapTotal,
        heapLimit: this.#heapLimit,
        external: memory.external,
        arrayBuffers: memory.arrayBuffers,
      },
      gc,
      activeResources: process.getActiveResourcesInfo().length,
      http: {
        requestsPerSecond: this.#http.takeCompleted() / seconds,
        shedPerSecond: this.#http.takeShed() / seconds,
        inFlight: this.#http.inFlight(),
      },
    });
  }
}
