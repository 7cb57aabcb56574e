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

/** The rest of the block after the stack was taken: a CPU profile, and where its stack samples were. */
export interface StallProfile {
  /** How long it was profiled, ms (until the loop turned, or `profileMs`). */
  durationMs: number;
  /** The CPU profile's samples. */
  samples: number;
  /** Stack samples taken meanwhile (the main thread paused every 20 ms, its stack read). */
  stacks: number;
  /** The CPU profile, for Chrome DevTools (Performance, "Load profile"): `<capture>.cpuprofile`. */
  file: string | null;
  /**
   * The program's innermost functions in the stack samples (where each function starts), with their share of the
   * samples (0–1), the most first, at most 10.
   */
  top: (StallFrame & { share: number })[];
}

/** What the main thread gives the watchdog. */
export interface WatchdogData {
  /** The main thread's heartbeat (Date.now() of its last turn), as a BigInt64: 8 bytes. */
  buffer: SharedArrayBuffer;
  /** Int32 cells shared with the main thread (EXIT, CONNECTED, INSPECTOR): 12 bytes. */
  flags: SharedArrayBuffer;
  thresholdMs: number;
  profileMs: number;
  pollMs: number;
  maxPerMinute: number;
  dir: string;
  keep: number;
}

/**
 * The cells of `flags`: EXIT is 0, 1 once the main thread exits (it waits, briefly, for 2: the watchdog's session
 * gone); CONNECTED is 1 while the watchdog's session is connected to the main thread (a session connected at exit has
 * Node print "Waiting for the debugger to disconnect..."); INSPECTOR is 1 while the main thread's inspector is open
 * (`--inspect`, the console's `inspect`): a debugger may hold the loop at a breakpoint, and the watchdog stands aside.
 */
export const EXIT = 0;
export const CONNECTED = 1;
export const INSPECTOR = 2;

/** Watchdog → main thread, once a stall is over: its length, and its capture, or why there is none. */
export type WatchdogMessage = { heldMs: number; capture: StallCapture | null; why?: string } | { error: string };

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

/** Node's own code (`node:…`) or native (no URL): where a stall is blamed on the program's caller instead. */
export const notTheProgram = (url: string | undefined): boolean =>
  url !== undefined && (url === '' || url.startsWith('node:'));

/** The frame a stall is told by: the innermost of the program's own (its dependencies' included), else the first. */
export const blamedFrame = (stack: readonly StallFrame[]): StallFrame | undefined =>
  stack.find((frame) => !notTheProgram(frame.url)) ?? stack[0];

/**
 * Where the stack samples of a block were: each sample's innermost function of the program's own (blamedFrame), counted
 * per function; their shares, the most first, at most `limit`.
 */
export function stackTop(stacks: readonly (readonly StallFrame[])[], limit = 10): StallProfile['top'] {
  const byFunction = new Map<string, { frame: StallFrame; hits: number }>();
  for (const stack of stacks) {
    const frame = blamedFrame(stack);
    if (frame === undefined) continue;
    const key = `${frame.function}\0${frame.url}\0${frame.line}\0${frame.column}`;
    const entry = byFunction.get(key) ?? { frame, hits: 0 };
    entry.hits += 1;
    byFunction.set(key, entry);
  }
  return [...byFunction.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, limit)
    .map(({ frame, hits }) => ({ ...frame, share: Math.round((hits / stacks.length) * 1000) / 1000 }));
}
