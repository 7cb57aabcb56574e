/**
 * What stall capture costs and what it catches (docs/debugging.md):
 * - throughput of the protected hello server with `stall: true` ÷ the same without, side by side (inRounds: both
 *   on one core, loaded at once, fresh processes each round), at 8 connections (CPU-bound); and the RSS it adds
 *   (its watchdog is a thread of its own);
 * - a server whose every 10th request blocks its loop 1 s in `reportRoute()`: of the stalls, how many captures name
 *   that function on their stack, and how many profiles of the rest of the block have it first.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBench } from '../src/loadtest/run.ts';
import type { StallCapture } from '../src/runtime/stall-file.ts';
import { startServer } from './lib.ts';
import { inRounds, SERVER } from './runtime.ts';

export interface StallFigures {
  throughputRatio: number;
  throughputRatios: number[];
  rssExtraMiB: number;
  stalls: number;
  named: number;
  /** Captures whose profile of the rest of the block has that function first. */
  profiled: number;
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

export async function stallCost(options: { seconds: number; rounds: number; pairs: number; blocks: number }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodescale-bench-stall-'));
  try {
    const on = JSON.stringify({ stall: { dir, maxPerMinute: 1000 } });
    const [paired] = await inRounds(
      { off: () => startServer([SERVER, '--protect', '{}']), on: () => startServer([SERVER, '--protect', on]) },
      [{ a: 'off', b: 'on', connections: 8, what: 'stall on ÷ off at 8 connections' }],
      { ...options, warmConnections: 8 },
    );
    // Memory: each warmed alike, then read.
    const [off1, on1] = [await startServer([SERVER, '--protect', '{}']), await startServer([SERVER, '--protect', on])];
    let rssExtraMiB: number;
    try {
      await Promise.all([off1, on1].map((s) => runBench({ url: s.url, connections: 8, durationMs: 2000 })));
      rssExtraMiB = rssMiB(on1.pid) - rssMiB(off1.pid);
    } finally {
      off1.stop();
      on1.stop();
    }
    for (const file of readdirSync(dir)) rmSync(path.join(dir, file));

    // The blocking route: one request at a time, every 10th blocks 1 s. Shedding off: after a stall the runtime
    // would rightly refuse requests for a while (503), and fewer would reach the route.
    const slowOptions = JSON.stringify({ stall: { dir, maxPerMinute: 1000 }, overload: false });
    const slow = await startServer([SERVER, '--slow-every', '10', '--slow-ms', '1000', '--protect', slowOptions]);
    try {
      for (let i = 0; i < options.blocks * 10; i++) await fetch(slow.url).then((response) => response.text());
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      slow.stop();
    }
    const captures = readdirSync(dir)
      .filter((file) => file.startsWith('stall-') && file.endsWith('.json'))
      .map((file) => JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as StallCapture);
    return {
      throughputRatio: paired!.throughputRatio,
      throughputRatios: paired!.throughputRatios,
      rssExtraMiB,
      stalls: captures.length,
      named: captures.filter((capture) => capture.stack.some((frame) => frame.function === 'reportRoute')).length,
      profiled: captures.filter((capture) => capture.profile?.top[0]?.function === 'reportRoute').length,
    } satisfies StallFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
