/**
 * What nodescale's processes say to each other, in one place: every message, the environment variables that carry
 * settings to a child, and a type guard per message (as piscina's types.ts). A new kind of message is added here
 * first; nothing else matches on the wire format.
 *
 * Two channels:
 * - **supervisor ↔ worker**, over the IPC channel `nodescale run` opens to each worker (cluster). A worker's messages
 *   are objects `{ nodescale: <kind>, … }`; the string 'ready' is accepted too, for apps without nodescale/runtime.
 *   Anything else on the channel is the app's and left alone. Stop is not a message: it is SIGTERM, which every app
 *   understands.
 * - **announcements**: a process that must say where it listens sends one JSON line per address to the Unix socket
 *   named by NODESCALE_ANNOUNCE (its parent listens there, in a private directory: listenForAnnouncements), never in
 *   its human log lines, which may change wording. A socket path, not an inherited descriptor: it survives whatever
 *   starts the process (npx, a shell), and a descriptor number that was not passed on would name one of libuv's own.
 *   A supervised worker sends its announcements to its supervisor, which passes them on with the worker's slot.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { eachLine } from './lines.ts';

/** The environment the supervisor gives each worker. */
export const WORKER_ENV = {
  /** '1' in a worker of `nodescale run`. */
  supervised: 'NODESCALE_SUPERVISED',
  /** The worker's slot number, 0 … workers-1 (stable across restarts and reloads). */
  slot: 'NODESCALE_WORKER_SLOT',
  /** Where the worker's admin console listens (`nodescale run --console`). */
  adminSocket: 'NODESCALE_ADMIN_SOCKET',
} as const;

/** The Unix socket a child sends its announcements to (set by the parent that listens there; '' or unset: none). */
export const ANNOUNCE_ENV = 'NODESCALE_ANNOUNCE';

export type WorkerMetricObject = MetricObjectWithValues<MetricValue<string>>;

/**
 * Worker → supervisor: this worker runs nodescale/runtime (sent when the runtime starts, before it listens), so it is
 * ready when the runtime says so, not when it listens (the supervisor's readyOn 'auto').
 */
export interface RuntimeMessage {
  nodescale: 'runtime';
  pid: number;
}
/** Worker → supervisor: ready to serve (nodescale/runtime sends it when its readiness first turns true). */
export interface ReadyMessage {
  nodescale: 'ready';
  pid: number;
}
/** Worker → supervisor, each runtime sample: what `nodescale status` shows, and (`detail`) what the dashboard charts. */
export interface SampleMessage {
  nodescale: 'sample';
  eventLoopDelayP99Ms: number;
  requestsPerSecond: number;
  /** Absent from workers of nodescale before the dashboard. */
  detail?: SampleDetail;
}
/** One runtime sample's figures, over its interval (sampler.ts). */
export interface SampleDetail {
  intervalMs: number;
  utilization: number;
  /** % of one core. */
  cpuPercent: number;
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  gcPauseMs: number;
  inFlight: number;
  shedPerSecond: number;
  /**
   * HTTP latency: the histogram's upper bounds (seconds; +Inf implied after the last) and the requests completed in
   * each bucket since the worker started (per bucket, not cumulative). A reader takes differences between samples,
   * and merges workers by adding counts: percentiles of the merged histogram, never a mean of percentiles.
   */
  latency: { bounds: number[]; counts: number[] };
}
/** The longest `detail` a RuntimeEventMessage may have (a worker's message is untrusted: longer ones are dropped). */
export const MAX_EVENT_DETAIL = 2000;

/**
 * Worker → supervisor: the runtime started or stopped shedding load, its leak detector fired, it wrote a crash
 * bundle as it dies, or its event loop stalled.
 */
export interface RuntimeEventMessage {
  nodescale: 'runtime-event';
  kind: 'overload' | 'recover' | 'leak' | 'crash-bundle' | 'stall';
  /**
   * For people: the reasons, how long it lasted, the heap's growth and the snapshot's path; for 'crash-bundle' (sent
   * as the worker dies of an uncaught exception), the bundle's directory.
   */
  detail: string;
}
/** Worker → supervisor: the answer to a MetricsRequest, the worker's registry as JSON (or why not). */
export interface MetricsAnswer {
  nodescale: 'metrics';
  id: number;
  metrics?: WorkerMetricObject[];
  error?: string;
}
/** Worker → supervisor: where this worker's admin console listens. */
export interface AdminSocketMessage {
  nodescale: 'admin';
  socketPath: string;
}
/** Any process → its parent (a worker: → its supervisor): a service listens at `url`. */
export interface ListeningAnnouncement {
  nodescale: 'listening';
  /** What listens: 'tagger', 'hello', 'metrics' (the supervisor's), … */
  service: string;
  url: string;
  pid: number;
  /** Set by the supervisor when it passes on a worker's announcement. */
  slot?: number;
}

/** One HTTP server a worker listens with, and its timeouts as they are now (ms; null where this Node has none). */
export interface HttpServerTimeouts {
  /** host:port, or a socket path. */
  address: string;
  tls: boolean;
  keepAliveTimeoutMs: number;
  keepAliveTimeoutBufferMs: number | null;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}
/** Worker → supervisor: the answer to a ServersRequest (sent by the drain preload, which sees every server listen). */
export interface ServersAnswer {
  nodescale: 'servers';
  id: number;
  servers: HttpServerTimeouts[];
}

/** Worker → supervisor: the answer to a ParkRequest (the drain preload's): done, or why not. */
export interface ParkAnswer {
  nodescale: 'parked' | 'unparked' | 'left' | 'flushed';
  id: number;
  error?: string;
}

export type WorkerMessage =
  | ParkAnswer
  | RuntimeMessage
  | ReadyMessage
  | SampleMessage
  | RuntimeEventMessage
  | MetricsAnswer
  | AdminSocketMessage
  | ListeningAnnouncement
  | ServersAnswer;

/** Supervisor → worker: send your metrics, answering with the same id. */
export interface MetricsRequest {
  nodescale: 'metrics';
  id: number;
}
/** Supervisor → worker: which HTTP servers listen, with their timeouts (for `nodescale doctor --name`). */
export interface ServersRequest {
  nodescale: 'servers';
  id: number;
}
/**
 * Supervisor → worker: park (refuse new connections, finish what it holds, close idle connections, stay alive) or
 * unpark (accept again): the previous generation kept during a reload's probation, to roll back to. Before a parked
 * worker is stopped: leave (close its servers, answered once their connections are done: node:cluster offers it no
 * more connections), then flush (answered once every offer sent before the leave was refused).
 */
export interface ParkRequest {
  nodescale: 'park' | 'unpark' | 'leave' | 'flush';
  id: number;
}
export type SupervisorMessage = MetricsRequest | ServersRequest | ParkRequest;

/**
 * What a supervisor publishes (its 'event'), for whatever shows it (the dashboard, src/dashboard/): the changes of
 * its workers and slots as they happen, typed, never parsed from its log lines. `time` is epoch ms.
 */
export type SupervisorEvent = SupervisorEventBody & { time: number };
/** A SupervisorEvent before it is stamped with its time. */
export type SupervisorEventBody =
  | { kind: 'started'; slot: number; pid: number; generation: number }
  | { kind: 'ready'; slot: number; pid: number; generation: number }
  | {
      kind: 'crash';
      slot: number;
      pid: number;
      code: number | null;
      signal: string | null;
      restartInMs: number;
      /** Its crash bundle's directory, when its runtime wrote one and said so before it exited. */
      bundle: string | null;
    }
  | { kind: 'crash-loop'; slot: number; reason: string }
  | { kind: 'reload'; generation: number; state: ReloadState; reason: string | null }
  | { kind: 'replaced'; generation: number; slot: number; pid: number; replaced: number; of: number }
  | { kind: 'scale'; workers: number }
  | { kind: 'memory'; slot: number; pid: number; rssBytes: number }
  | { kind: 'overload' | 'recover' | 'leak' | 'stall'; slot: number; pid: number; detail: string };
/** A reload's states, as status() shows them (supervisor/status.ts ReloadStatus). */
export type ReloadState = 'replacing' | 'probation' | 'passed' | 'rolled-back' | 'failed-probation' | 'interrupted';

/** A worker's sample as its supervisor publishes it (its 'sample'), with the worker it came from. */
export interface WorkerSampleEvent {
  slot: number;
  pid: number;
  generation: number;
  time: number;
  eventLoopDelayP99Ms: number;
  requestsPerSecond: number;
  detail: SampleDetail | null;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isId = (value: unknown): value is number => Number.isSafeInteger(value);

export const isRuntimeMessage = (m: unknown): m is RuntimeMessage =>
  isObject(m) && m.nodescale === 'runtime' && isId(m.pid);
export const isReadyMessage = (m: unknown): m is ReadyMessage => isObject(m) && m.nodescale === 'ready' && isId(m.pid);
/** At most this many latency buckets in a sample's detail (the runtime's histogram has 15 by default). */
export const MAX_LATENCY_BUCKETS = 64;
const isCount = (value: unknown): value is number => isFiniteNumber(value) && value >= 0;
/** A sample's detail, checked apart: one that is not (too many buckets, a bad figure) is dropped, the sample kept. */
export const isSampleDetail = (d: unknown): d is SampleDetail =>
  isObject(d) &&
  isCount(d.intervalMs) &&
  isCount(d.utilization) &&
  isCount(d.cpuPercent) &&
  isCount(d.rssBytes) &&
  isCount(d.heapUsedBytes) &&
  isCount(d.heapTotalBytes) &&
  isCount(d.gcPauseMs) &&
  isCount(d.inFlight) &&
  isCount(d.shedPerSecond) &&
  isObject(d.latency) &&
  Array.isArray(d.latency.bounds) &&
  Array.isArray(d.latency.counts) &&
  d.latency.bounds.length <= MAX_LATENCY_BUCKETS &&
  d.latency.counts.length === d.latency.bounds.length + 1 &&
  d.latency.bounds.every(isCount) &&
  d.latency.counts.every(isCount);
export const isSampleMessage = (m: unknown): m is SampleMessage =>
  isObject(m) &&
  m.nodescale === 'sample' &&
  isFiniteNumber(m.eventLoopDelayP99Ms) &&
  isFiniteNumber(m.requestsPerSecond);
export const isRuntimeEventMessage = (m: unknown): m is RuntimeEventMessage =>
  isObject(m) &&
  m.nodescale === 'runtime-event' &&
  ['overload', 'recover', 'leak', 'crash-bundle', 'stall'].includes(m.kind as string) &&
  typeof m.detail === 'string' &&
  m.detail.length <= MAX_EVENT_DETAIL;
export const isMetricsAnswer = (m: unknown): m is MetricsAnswer =>
  isObject(m) && m.nodescale === 'metrics' && isId(m.id) && (Array.isArray(m.metrics) || typeof m.error === 'string');
export const isAdminSocketMessage = (m: unknown): m is AdminSocketMessage =>
  isObject(m) && m.nodescale === 'admin' && typeof m.socketPath === 'string';
export const isListeningAnnouncement = (m: unknown): m is ListeningAnnouncement =>
  isObject(m) &&
  m.nodescale === 'listening' &&
  typeof m.service === 'string' &&
  typeof m.url === 'string' &&
  isId(m.pid) &&
  (m.slot === undefined || isId(m.slot));
/** At most this many servers in an answer: a worker's message is untrusted input, and cannot grow the supervisor. */
export const MAX_SERVERS_ANSWERED = 64;
const isMs = (value: unknown): value is number => isFiniteNumber(value) && value >= 0;
const isServerTimeouts = (s: unknown): s is HttpServerTimeouts =>
  isObject(s) &&
  typeof s.address === 'string' &&
  s.address.length <= 256 &&
  typeof s.tls === 'boolean' &&
  isMs(s.keepAliveTimeoutMs) &&
  (s.keepAliveTimeoutBufferMs === null || isMs(s.keepAliveTimeoutBufferMs)) &&
  isMs(s.headersTimeoutMs) &&
  isMs(s.requestTimeoutMs);
export const isServersAnswer = (m: unknown): m is ServersAnswer =>
  isObject(m) &&
  m.nodescale === 'servers' &&
  isId(m.id) &&
  Array.isArray(m.servers) &&
  m.servers.length <= MAX_SERVERS_ANSWERED &&
  m.servers.every(isServerTimeouts);
export const isServersRequest = (m: unknown): m is ServersRequest =>
  isObject(m) && m.nodescale === 'servers' && isId(m.id) && !('servers' in m);
export const isParkRequest = (m: unknown): m is ParkRequest =>
  isObject(m) && ['park', 'unpark', 'leave', 'flush'].includes(m.nodescale as string) && isId(m.id);
export const isParkAnswer = (m: unknown): m is ParkAnswer =>
  isObject(m) &&
  ['parked', 'unparked', 'left', 'flushed'].includes(m.nodescale as string) &&
  isId(m.id) &&
  (m.error === undefined || (typeof m.error === 'string' && m.error.length <= 1000));
export const isMetricsRequest = (m: unknown): m is MetricsRequest =>
  isObject(m) && m.nodescale === 'metrics' && isId(m.id) && !('metrics' in m) && !('error' in m);

/** A worker's message, checked; null for anything else (the app's own messages, or a malformed one). */
export function workerMessage(value: unknown): WorkerMessage | null {
  for (const guard of [
    isRuntimeMessage,
    isReadyMessage,
    isSampleMessage,
    isRuntimeEventMessage,
    isMetricsAnswer,
    isAdminSocketMessage,
    isListeningAnnouncement,
    isServersAnswer,
    isParkAnswer,
  ]) {
    if (guard(value)) return value;
  }
  return null;
}

/** True in a worker of `nodescale run` (its environment says so, and it has the IPC channel). */
export const isSupervisedWorker = (env: NodeJS.ProcessEnv = process.env): boolean =>
  env[WORKER_ENV.supervised] === '1' && process.send !== undefined;

/** Sends a message to the supervisor, if this process is connected to one. */
export function tellSupervisor(message: WorkerMessage): void {
  if (process.send !== undefined && process.connected) process.send(message);
}

/**
 * Says where a service of this process listens: to the supervisor when supervised (which passes it on), and to the
 * socket NODESCALE_ANNOUNCE names when the parent gave one. A parent that went away costs nothing.
 */
export function announceListening(service: string, url: string): void {
  const announcement: ListeningAnnouncement = { nodescale: 'listening', service, url, pid: process.pid };
  if (isSupervisedWorker()) tellSupervisor(announcement);
  else writeAnnouncement(announcement);
}

/** Sends an announcement to this process's parent, if it listens for them. */
export function writeAnnouncement(announcement: ListeningAnnouncement): void {
  const socketPath = process.env[ANNOUNCE_ENV];
  if (!socketPath) return;
  const socket = net.createConnection(socketPath);
  socket.on('error', () => {}); // the parent is gone: nobody listens any more
  socket.end(`${JSON.stringify(announcement)}\n`);
}

export interface AnnouncementListener {
  /** The environment that makes a child announce here: { NODESCALE_ANNOUNCE: <socket path> }. */
  env: Record<string, string>;
  close(): void;
}

/** The parent's side: a private socket (a 0700 directory of its own) that calls `onAnnouncement` for each one. */
export async function listenForAnnouncements(
  onAnnouncement: (announcement: ListeningAnnouncement) => void,
): Promise<AnnouncementListener> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-announce-'));
  const socketPath = path.join(dir, 'announce.sock');
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    eachLine(socket, (line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        return;
      }
      if (isListeningAnnouncement(value)) onAnnouncement(value);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  server.unref();
  return {
    env: { [ANNOUNCE_ENV]: socketPath },
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Where a URL that may hold a password can come from, besides its flag (which every local user can read in ps): the
 * environment a parent gives its children (`demo --scale-out` gives its tiers the broker's and the store's).
 */
export const SECRET_URL_ENV = { broker: 'NODESCALE_BROKER_URL', store: 'NODESCALE_STORE_URL' } as const;
