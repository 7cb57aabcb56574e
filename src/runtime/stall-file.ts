/**
 * A stall capture as written to disk, next to the crash bundles (`stall-<ISO time>-<pid>.json`, mode 0600, the
 * oldest beyond `keep` removed), and the messages between the watchdog and the main thread (stall.ts). A capture
 * holds function names, script URLs and positions, the request's method and path (never its query string, headers
 * or body) and figures: no value from the program's memory, so nothing secret.
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface StallFrame {
  function: string;
  url: string;
  line: number;
  column: number;
  /** Where a source map says it is (the process runs with --enable-source-maps). */
  source?: { url: string; line: number; column: number };
}

export interface StallCapture {
  /** When the loop last turned before the stall. */
  time: string;
  pid: number;
  thresholdMs: number;
  /** How long the loop had been held when the stack was taken. */
  capturedAfterMs: number;
  /** The pause landed late (the block was in native code): the stack is of the JavaScript that ran after it. */
  late: boolean;
  /** The main thread's stack while the loop was held, innermost first. */
  stack: StallFrame[];
  /** The request the runtime saw start last before the stall ("GET /route"), when it serves HTTP. */
  request: string | null;
  /** How long the loop was held in all (null while it still is). */
  heldMs: number | null;
  /** Where the rest of the block's time went (`stall.profileMs`), null when off or not taken. */
  profile: StallProfile | null;
  /** Where it was written. */
  file: string | null;
}

/** A CPU profile of the block after the stack was taken, and its functions by self time, the most first. */
export interface StallProfile {
  /** How long it sampled, ms (until the loop turned, or `profileMs`). */
  durationMs: number;
  samples: number;
  /** The whole profile, for Chrome DevTools (Performance, "Load profile"): `<capture>.cpuprofile`. */
  file: string | null;
  /** At most 10 functions, with their share of the samples (0–1). */
  top: (StallFrame & { selfMs: number; share: number })[];
}

/** What the main thread gives the watchdog. */
export interface WatchdogData {
  /** [0]: the main thread's heartbeat (Date.now() of its last turn), as a BigInt64. */
  buffer: SharedArrayBuffer;
  thresholdMs: number;
  profileMs: number;
  pollMs: number;
  maxPerMinute: number;
  dir: string;
  keep: number;
}

/** Watchdog → main thread, once a stall is over: its length, and its capture unless rate-limited. */
export type WatchdogMessage = { heldMs: number; capture: StallCapture | null } | { error: string };

/** file:line:column of a frame, its source's when a source map gave one. */
export function frameLocation(frame: StallFrame): string {
  const at = frame.source ?? frame;
  return `${at.url || '(unknown)'}:${at.line}:${at.column}`;
}

const NAME = /^stall-\d{4}-\d\d-\d\dT[\d-]+Z-\d+\.json$/;

/** The profile a capture's file names: the same name, `.cpuprofile`. */
export const profileFileOf = (file: string): string => file.replace(/\.json$/, '.cpuprofile');

/** Writes (or rewrites) a capture; returns its path. */
export function writeStallFile(dir: string, capture: StallCapture, keep: number): string {
  const file = capture.file ?? path.join(dir, `stall-${capture.time.replace(/[:.]/g, '-')}-${capture.pid}.json`);
  writeFileSync(file, `${JSON.stringify({ ...capture, file }, null, 2)}\n`, { mode: 0o600 });
  if (capture.file === null && keep > 0) {
    const files = readdirSync(dir)
      .filter((name) => NAME.test(name))
      .sort();
    for (const name of files.slice(0, Math.max(0, files.length - keep))) {
      rmSync(path.join(dir, name), { force: true });
      rmSync(path.join(dir, profileFileOf(name)), { force: true });
    }
  }
  return file;
}

/** The part of a V8 CPU profile (the inspector's `Profiler.Profile`) read here. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }[];
  samples?: number[];
}

/**
 * A profile's functions by self time: samples counted per function (its nodes under every caller together), the
 * idle ones left out; at most `limit`, the most first.
 */
export function profileTop(profile: CpuProfile, durationMs: number, limit = 10): StallProfile['top'] {
  const samples = profile.samples ?? [];
  const byNode = new Map<number, number>();
  for (const id of samples) byNode.set(id, (byNode.get(id) ?? 0) + 1);
  const byFunction = new Map<string, { frame: StallFrame; hits: number }>();
  for (const node of profile.nodes) {
    const hits = byNode.get(node.id);
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    if (hits === undefined || functionName === '(idle)' || functionName === '(root)') continue;
    const key = `${functionName}\0${url}\0${lineNumber}\0${columnNumber}`;
    const entry = byFunction.get(key) ?? {
      frame: { function: functionName || '(anonymous)', url, line: lineNumber + 1, column: columnNumber + 1 },
      hits: 0,
    };
    entry.hits += hits;
    byFunction.set(key, entry);
  }
  const total = samples.length;
  return [...byFunction.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, limit)
    .map(({ frame, hits }) => ({
      ...frame,
      selfMs: Math.round((hits / total) * durationMs),
      share: Math.round((hits / total) * 1000) / 1000,
    }));
}
