/**
 * What the supervisor reports: each worker's status, its metrics, and the reloads' outcomes and progress (status(),
 * workerMetrics(), workerServers(), reload(), 'reload-progress'), as `nodescale status` and the control socket show them.
 */
import type { HttpServerTimeouts, WorkerMetricObject } from '../ipc.ts';

/** 'parked': the previous generation during a reload's probation, alive and accepting nothing, to roll back to. */
export type WorkerState = 'starting' | 'ready' | 'parked' | 'stopping' | 'exited';

export interface WorkerStatus {
  slot: number;
  pid: number;
  generation: number;
  state: WorkerState;
  uptimeSeconds: number;
  restarts: number;
  rssBytes: number | null;
  eventLoopDelayP99Ms: number | null;
  requestsPerSecond: number | null;
}

export interface WorkerMetrics {
  slot: number;
  pid: number;
  /** prom-client's getMetricsAsJSON() of the worker; null when it has no runtime or did not answer in time. */
  metrics: WorkerMetricObject[] | null;
}

export interface WorkerServers {
  slot: number;
  pid: number;
  /** The HTTP servers it listens with and their timeouts now; null when it did not say (--no-http-drain, no answer). */
  servers: HttpServerTimeouts[] | null;
}

export type ReloadOutcome =
  | { ok: true; replaced: number }
  | { ok: false; reason: string; replaced: number; failure: 'rolled-back' | 'probation' | 'stopping' | 'scale' };

/** Emitted as 'reload-progress' while a reload runs: a slot replaced, then the probation begun. */
export type ReloadProgress =
  | { generation: number; slot: number; pid: number | undefined; replaced: number; of: number }
  | { generation: number; probationLeftMs: number };

/** The last reload, as status() shows it: replacing slot by slot, then on probation until each new worker has lived probationMs since ready. */
export interface ReloadStatus {
  generation: number;
  state: 'replacing' | 'probation' | 'passed' | 'rolled-back' | 'failed-probation' | 'interrupted';
  reason: string | null;
}
