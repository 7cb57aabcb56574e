/**
 * The stall watchdog: a worker thread (stall.ts starts it) that sees, from the heartbeat the main thread stamps in
 * shared memory, that the main thread's event loop has not turned for `thresholdMs`, and catches what runs there
 * while it still runs: it connects an inspector session to the main thread (`connectToMainThread`), enables the
 * debugger (about 20 ms: V8 announces every script), pauses the main thread, reads its call frames and the request
 * the runtime saw start last, resumes it, and disconnects: the debugger is on only for the capture. The capture is
 * written at once (an endless loop never lets the main thread write anything); the main thread is told when the
 * loop turns again, with how long it was held, and completes it (source maps, metrics, the supervisor, the console).
 * With `profileMs`, the rest of the block (until the loop turns, at most that long) is profiled and its stack sampled:
 * where its time went, not only where it was at one moment.
 *
 * Pitfalls this is written around: the session holds no handle, so this thread's own poll timer keeps it alive; it
 * never pauses its own thread (nodejs/node#28870: only the main thread is targeted); a session left connected makes
 * the process wait for the debugger at exit, so it is disconnected after each capture; a block inside native code
 * lets the pause land only when JavaScript runs again ("late": the stack is the caller's, after the native call);
 * and a process that exits while a session is connected prints "Waiting for the debugger to disconnect...", so the
 * main thread's exit handler asks for the session to go, through shared memory, and waits for it (stall.ts).
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parentPort, workerData } from 'node:worker_threads';
import {
  CONNECTED,
  EXIT,
  INSPECTOR,
  profileFileOf,
  stackTop,
  writeStallFile,
  type StallProfile,
  type StallFrame,
  type StallCapture,
  type WatchdogData,
  type WatchdogMessage,
} from './stall-file.ts';

const data = workerData as WatchdogData;
const beat = new BigInt64Array(data.buffer);
const flags = new Int32Array(data.flags);
/** The session connected to the main thread, while a capture runs. */
let connected: Session | null = null;
// The main thread exits: the session goes at once (whatever it was waiting for), and the main thread is told.
const exiting = Atomics.waitAsync(flags, EXIT, 0);
void (exiting.async ? exiting.value : Promise.resolve()).then(() => {
  connected?.disconnect();
  Atomics.store(flags, CONNECTED, 0);
  Atomics.store(flags, EXIT, 2);
  Atomics.notify(flags, EXIT);
});
/**
 * A pause that took longer than this to land was held up in native code (a starved machine can delay the answer too:
 * `late` then says the stack may be of what ran after the block, not that it is).
 */
const LATE_MS = 50;
/** How often the rest of a block's stack is sampled (each a pause of the main thread of well under a millisecond). */
const SAMPLE_MS = 20;

let busy = false;
/** The heartbeat value of the stall handled last: one capture per stall. */
let handled = 0n;
const recent: number[] = [];

const check = async () => {
  const last = Atomics.load(beat, 0);
  if (busy || last === 0n || last === handled) return;
  const lag = Date.now() - Number(last);
  if (lag < data.thresholdMs) return;
  handled = last;
  busy = true;
  try {
    const now = Date.now();
    while (recent.length > 0 && recent[0]! < now - 60_000) recent.shift();
    const taken =
      Atomics.load(flags, INSPECTOR) === 1
        ? INSPECTOR_OPEN
        : recent.length < data.maxPerMinute
          ? await captureStack(last, lag)
          : RATE_LIMITED;
    // A debugger holds the main thread at a pause (a breakpoint): a person, not a stall.
    if (taken === DEBUGGER) return;
    if (typeof taken !== 'string') recent.push(now);
    // The stall goes on: its length is known once the loop turns again.
    while (Atomics.load(beat, 0) === last) await sleep(data.pollMs);
    const message: WatchdogMessage = {
      heldMs: Math.max(lag, Number(Atomics.load(beat, 0)) - Number(last)),
      capture: typeof taken === 'string' ? null : taken,
      ...(typeof taken === 'string' ? { why: taken } : {}),
    };
    parentPort!.postMessage(message);
  } catch (error) {
    parentPort!.postMessage({ error: (error as Error).message } satisfies WatchdogMessage);
  } finally {
    busy = false;
  }
};

/** Why a stall has no capture: the rate limit, or the pause asked for never came. */
const RATE_LIMITED = 'rate limit (stall.maxPerMinute)';
const NO_PAUSE = 'the main thread did not pause';
/** A debugger may be what holds the loop (at a breakpoint), and pausing and resuming the thread would be in its way. */
const INSPECTOR_OPEN = 'the inspector is open';
/** Not a stall: another debugger client holds the main thread at a pause. */
const DEBUGGER = 'paused by a debugger';

async function captureStack(last: bigint, lag: number): Promise<StallCapture | typeof NO_PAUSE | typeof DEBUGGER> {
  const session = new Session();
  const scripts = new Map<string, string>();
  session.on('Debugger.scriptParsed', ({ params }) => scripts.set(params.scriptId, params.url));
  session.connectToMainThread();
  connected = session;
  Atomics.store(flags, CONNECTED, 1);
  try {
    // A session that enables the debugger while another client holds the thread paused is told so at once, before
    // the answer to Debugger.enable: that pause is a person's, left as it is (disabling here does not resume it).
    let pausedByOther = false;
    const early = () => void (pausedByOther = true);
    session.once('Debugger.paused', early);
    await session.post('Debugger.enable');
    session.off('Debugger.paused', early);
    if (pausedByOther) {
      await session.post('Debugger.disable');
      return DEBUGGER;
    }
    const asked = Date.now();
    const params = await pauseMainThread(session, last);
    if (params === null) {
      await session.post('Debugger.disable');
      return NO_PAUSE;
    }
    if (params === DEBUGGER) return DEBUGGER;
    const pauseMs = Date.now() - asked;
    let request: string | null = null;
    try {
      // In a frame of the program's (Node's internal frames may not see the global the runtime set).
      const frame = params.callFrames.find(
        (f) => !(scripts.get(f.location.scriptId) ?? f.url ?? '').startsWith('node:'),
      );
      if (frame !== undefined) {
        const { result } = await session.post('Debugger.evaluateOnCallFrame', {
          callFrameId: frame.callFrameId,
          expression: `globalThis[Symbol.for('nodescale.stall.request')]?.() ?? null`,
          returnByValue: true,
          silent: true,
          throwOnSideEffect: false,
        });
        if (typeof result.value === 'string') request = result.value.slice(0, 300);
      }
    } finally {
      await session.post('Debugger.resume');
    }
    const stack = params.callFrames.slice(0, 32).map((frame) => frameOf(frame, scripts, frame.location));
    const capture: StallCapture = {
      time: new Date(Number(last)).toISOString(),
      pid: process.pid,
      thresholdMs: data.thresholdMs,
      capturedAfterMs: lag + pauseMs,
      // Held up in native code, or the loop turned meanwhile: the stack may be of what ran after the block.
      late: pauseMs > LATE_MS || Atomics.load(beat, 0) !== last,
      stack,
      request,
      heldMs: null,
      profile: null,
      file: null,
    };
    capture.file = writeStallFile(data.dir, capture, data.keep);
    if (data.profileMs > 0 && Atomics.load(beat, 0) === last) {
      capture.profile = await profileRest(session, scripts, last, capture.file);
      writeStallFile(data.dir, capture, data.keep);
    }
    await session.post('Debugger.disable');
    return capture;
  } finally {
    session.disconnect();
    connected = null;
    Atomics.store(flags, CONNECTED, 0);
  }
}

/**
 * The rest of the block, until the loop turns or `profileMs` has passed: V8's CPU profiler runs (the whole profile,
 * written beside the capture for DevTools), and every SAMPLE_MS the main thread is paused and its stack read, for the
 * summary: the program's innermost function in each (Node's internals and native builtins counted to the program's
 * caller). The summary is the debugger's, not the profiler's, because the debugger sees functions inlined into
 * others and the profiler counts them as the function they were inlined into (hot code, the code that blocks). Null
 * when it could not be taken (the capture stands without it).
 */
async function profileRest(
  session: Session,
  scripts: Map<string, string>,
  last: bigint,
  capture: string,
): Promise<StallProfile | null> {
  const held = () => Atomics.load(beat, 0) === last;
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const started = Date.now();
    const stacks: StallFrame[][] = [];
    while (held() && Date.now() - started < data.profileMs) {
      await sleep(SAMPLE_MS);
      if (!held()) break;
      const params = await pauseMainThread(session, last);
      if (params === null || params === DEBUGGER) break;
      await session.post('Debugger.resume');
      // A pause that landed after the loop turned is not of the block.
      if (held()) stacks.push(params.callFrames.map((frame) => frameOf(frame, scripts, frame.functionLocation)));
    }
    const { profile } = await session.post('Profiler.stop');
    const durationMs = Date.now() - started;
    await session.post('Profiler.disable');
    const file = profileFileOf(capture);
    writeFileSync(file, JSON.stringify(profile), { mode: 0o600 });
    return { durationMs, samples: profile.samples?.length ?? 0, stacks: stacks.length, file, top: stackTop(stacks) };
  } catch {
    return null;
  }
}

/**
 * Pauses the main thread and answers its frames; the caller resumes it. Null when the pause never comes: the loop
 * turned and a second passed (JavaScript ran, so the request was dropped). DEBUGGER when the pause that came is not
 * the one asked for — a breakpoint of another client's, hit meanwhile — which is left as it is. (Another client's
 * Debugger.pause landing at the same moment as this one cannot be told from it: every pause is every session's. The
 * inspector open, the common way to debug, makes the watchdog stand aside before it comes to that.)
 */
async function pauseMainThread(session: Session, last: bigint): Promise<PausedParams | typeof DEBUGGER | null> {
  let answered = false;
  const paused = (once(session, 'Debugger.paused') as Promise<[{ params: PausedParams }]>).then(([{ params }]) => {
    answered = true;
    return params;
  });
  await session.post('Debugger.pause');
  const dropped = (async () => {
    let turnedAt = 0;
    while (!answered) {
      await sleep(data.pollMs);
      if (Atomics.load(beat, 0) !== last) turnedAt ||= Date.now();
      if (turnedAt > 0 && Date.now() - turnedAt > 1000) return null;
    }
    return null;
  })();
  const params = await Promise.race([paused, dropped]);
  if (params === null) return null;
  return params.reason === 'other' && (params.hitBreakpoints ?? []).length === 0 ? params : DEBUGGER;
}

/** A paused call frame as a capture shows it, at `at` (where it runs, or where its function starts). */
function frameOf(
  frame: PausedFrame,
  scripts: Map<string, string>,
  at: PausedFrame['location'] = frame.location,
): StallFrame {
  return {
    function: frame.functionName || '(anonymous)',
    url: scripts.get(frame.location.scriptId) ?? frame.url ?? '',
    line: at.lineNumber + 1,
    column: (at.columnNumber ?? 0) + 1,
  };
}

interface PausedFrame {
  callFrameId: string;
  functionName: string;
  url?: string;
  location: { scriptId: string; lineNumber: number; columnNumber?: number };
  functionLocation?: { scriptId: string; lineNumber: number; columnNumber?: number };
}

interface PausedParams {
  reason: string;
  hitBreakpoints?: string[];
  callFrames: PausedFrame[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// This timer is what keeps the thread alive (the inspector session holds no handle).
setInterval(() => void check(), data.pollMs);
