/**
 * The dashboard's memory of one supervised app: every second, one point for the app and one per worker, made from
 * the samples its workers sent since the last point (the supervisor's 'sample', ipc.ts WorkerSampleEvent), and the
 * supervisor's events as they happen ('event', SupervisorEvent). The last 15 minutes are kept (900 points, 1 000
 * events); a page that connects gets them at once, then each new one.
 *
 * What a chart of many workers must not hide: latency percentiles come from the workers' histograms added together
 * (never a mean of their percentiles), and the app's event-loop delay is its worst worker's, not the mean, so one
 * blocked worker shows.
 */
import { EventEmitter } from 'node:events';
import type { SupervisorEvent, WorkerSampleEvent } from '../ipc.ts';
import type { WorkerStatus } from '../supervisor/status.ts';
import { latencyPercentiles, subtractCounts } from './histogram.ts';

/** What the collector reads: a supervisor, or anything with its events and status(). */
export interface DashboardSource extends Pick<EventEmitter, 'on' | 'off'> {
  /** Emits 'event' (SupervisorEvent) and 'sample' (WorkerSampleEvent). */
  status(): WorkerStatus[];
}

/** One worker's second. Figures it did not send (an app without nodescale/runtime) are null. */
export interface WorkerPoint {
  slot: number;
  pid: number;
  generation: number;
  requestsPerSecond: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  eventLoopDelayP99Ms: number | null;
  utilization: number | null;
  cpuPercent: number | null;
  heapUsedBytes: number | null;
  rssBytes: number | null;
  gcPauseMs: number | null;
  inFlight: number | null;
  shedPerSecond: number | null;
}

/** The app's second: sums over its workers, latency from their merged histograms, the worst worker's loop. */
export interface AppPoint {
  time: number;
  requestsPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** The worst worker's. */
  eventLoopDelayP99Ms: number | null;
  /** The busiest worker's. */
  utilization: number | null;
  cpuPercent: number;
  heapUsedBytes: number;
  rssBytes: number;
  gcPauseMs: number;
  shedPerSecond: number;
  workers: WorkerPoint[];
}

/** A row of the workers table (`pm2 ls`'s columns, and the runtime's). */
export interface WorkerRow extends WorkerStatus {
  utilization: number | null;
  cpuPercent: number | null;
  heapUsedBytes: number | null;
  inFlight: number | null;
  shedPerSecond: number | null;
}

export interface Snapshot {
  name: string;
  points: AppPoint[];
  events: SupervisorEvent[];
  workers: WorkerRow[];
}

export const COLLECTOR_LIMITS = { points: 900, events: 1000, intervalMs: 1000 } as const;

interface Latest {
  sample: WorkerSampleEvent;
  /** Not yet in a point: its latency counts are new (a second without a sample has no latency of its own). */
  fresh: boolean;
}

export class Collector extends EventEmitter {
  readonly name: string;
  readonly #source: DashboardSource;
  readonly #points: AppPoint[] = [];
  readonly #events: SupervisorEvent[] = [];
  /** Each worker's newest sample, by pid. */
  readonly #latest = new Map<number, Latest>();
  /** The latency counts each worker's last point was computed from, by pid. */
  readonly #counted = new Map<number, number[]>();
  #rows: WorkerRow[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #onEvent = (event: SupervisorEvent) => this.#event(event);
  readonly #onSample = (sample: WorkerSampleEvent) => this.#latest.set(sample.pid, { sample, fresh: true });

  constructor(name: string, source: DashboardSource, intervalMs: number = COLLECTOR_LIMITS.intervalMs) {
    super();
    this.name = name;
    this.#source = source;
    source.on('event', this.#onEvent);
    source.on('sample', this.#onSample);
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  snapshot(): Snapshot {
    return { name: this.name, points: [...this.#points], events: [...this.#events], workers: this.#rows };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#source.off('event', this.#onEvent);
    this.#source.off('sample', this.#onSample);
  }

  #event(event: SupervisorEvent): void {
    this.#events.push(event);
    if (this.#events.length > COLLECTOR_LIMITS.events) this.#events.shift();
    this.emit('event', event);
  }

  /** Makes the point of the interval just ended (the timer calls it every interval). */
  tick(): void {
    const status = this.#source.status();
    const alive = new Set(status.map((worker) => worker.pid));
    for (const pid of this.#latest.keys()) {
      if (!alive.has(pid)) {
        this.#latest.delete(pid);
        this.#counted.delete(pid);
      }
    }
    const workers: WorkerPoint[] = [];
    let merged: number[] | null = null;
    let bounds: number[] | null = null;
    for (const worker of status) {
      const latest = this.#latest.get(worker.pid);
      const detail = latest?.sample.detail ?? null;
      let p50Ms: number | null = null;
      let p99Ms: number | null = null;
      if (latest?.fresh === true && detail !== null) {
        // The requests of this second: the counts since the ones the last point used (all of them the first time).
        const counts = detail.latency.counts;
        const previous = this.#counted.get(worker.pid);
        const delta = subtractCounts(counts, previous);
        this.#counted.set(worker.pid, counts);
        ({ p50Ms, p99Ms } = latencyPercentiles(detail.latency.bounds, delta));
        if (bounds === null || sameBounds(bounds, detail.latency.bounds)) {
          bounds = detail.latency.bounds;
          merged = merged === null ? delta : merged.map((count, i) => count + delta[i]!);
        }
      }
      if (latest !== undefined) latest.fresh = false;
      const sample = latest?.sample;
      workers.push({
        slot: worker.slot,
        pid: worker.pid,
        generation: worker.generation,
        requestsPerSecond: sample?.requestsPerSecond ?? null,
        p50Ms,
        p99Ms,
        eventLoopDelayP99Ms: sample?.eventLoopDelayP99Ms ?? null,
        utilization: detail?.utilization ?? null,
        cpuPercent: detail?.cpuPercent ?? null,
        heapUsedBytes: detail?.heapUsedBytes ?? null,
        rssBytes: detail?.rssBytes ?? worker.rssBytes,
        gcPauseMs: detail?.gcPauseMs ?? null,
        inFlight: detail?.inFlight ?? null,
        shedPerSecond: detail?.shedPerSecond ?? null,
      });
    }
    const app = bounds !== null && merged !== null ? latencyPercentiles(bounds, merged) : { p50Ms: null, p99Ms: null };
    const sum = (pick: (w: WorkerPoint) => number | null) => workers.reduce((total, w) => total + (pick(w) ?? 0), 0);
    const worst = (pick: (w: WorkerPoint) => number | null) => {
      const values = workers.map(pick).filter((value): value is number => value !== null);
      return values.length === 0 ? null : Math.max(...values);
    };
    const point: AppPoint = {
      time: Date.now(),
      requestsPerSecond: sum((w) => w.requestsPerSecond),
      ...app,
      eventLoopDelayP99Ms: worst((w) => w.eventLoopDelayP99Ms),
      utilization: worst((w) => w.utilization),
      cpuPercent: sum((w) => w.cpuPercent),
      heapUsedBytes: sum((w) => w.heapUsedBytes),
      rssBytes: sum((w) => w.rssBytes),
      gcPauseMs: sum((w) => w.gcPauseMs),
      shedPerSecond: sum((w) => w.shedPerSecond),
      workers,
    };
    this.#points.push(point);
    if (this.#points.length > COLLECTOR_LIMITS.points) this.#points.shift();
    this.#rows = status.map((worker) => {
      const detail = this.#latest.get(worker.pid)?.sample.detail ?? null;
      return {
        ...worker,
        utilization: detail?.utilization ?? null,
        cpuPercent: detail?.cpuPercent ?? null,
        heapUsedBytes: detail?.heapUsedBytes ?? null,
        inFlight: detail?.inFlight ?? null,
        shedPerSecond: detail?.shedPerSecond ?? null,
      };
    });
    this.emit('point', point, this.#rows);
  }
}

const sameBounds = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((bound, i) => bound === b[i]);
