/**
 * What the parked rollback costs (`nodescale run --rollback parked`, the default, against `none`): the workers' RSS
 * while a reload is on probation ÷ their RSS before it, for the same app (`bench/servers/http.ts` on
 * nodescale/runtime, 2 workers) in one run. With `parked` the previous generation is alive for the probation, so the
 * ratio is about 2; with `none` about 1. Each mode is its own supervisor; RSS is what `nodescale status` reports.
 *
 *   npm run bench -- rollback
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { BENCH_DIR, median, NODESCALE, startProcess } from './lib.ts';

const APP = path.join(BENCH_DIR, 'servers', 'http.ts');
const run = promisify(execFile);

export interface RollbackMemory {
  mode: 'parked' | 'none';
  /** Sum of the workers' RSS before the reload, bytes. */
  beforeBytes: number;
  /** The largest sum seen while the reload was on probation, bytes. */
  probationBytes: number;
  ratio: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Status {
  workers: { rssBytes: number | null; state: string }[];
  reload: { state: string } | null;
}

async function status(name: string): Promise<Status> {
  const { stdout } = await run(process.execPath, [NODESCALE, 'status', '--name', name, '--json']);
  return JSON.parse(stdout) as Status;
}

const rss = (s: Status) => s.workers.reduce((sum, w) => sum + (w.rssBytes ?? 0), 0);

async function measure(mode: 'parked' | 'none', rounds: number): Promise<RollbackMemory> {
  const name = `bench-rollback-${mode}-${process.pid}`;
  const port = await freePort();
  const supervisor = await startProcess(
    [
      NODESCALE,
      'run',
      APP,
      '-w',
      '2',
      '--name',
      name,
      '--stability',
      '500ms',
      '--probation',
      '4s',
      '--rollback',
      mode,
      '--',
      '--port',
      String(port),
    ],
    /2 worker\(s\) ready/,
    { pin: false },
  );
  try {
    const befores: number[] = [];
    const probations: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Settled: a few samples of the steady state first.
      const steady: number[] = [];
      for (let i = 0; i < 5; i++) {
        steady.push(rss(await status(name)));
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      befores.push(median(steady));
      const reloading = run(process.execPath, [NODESCALE, 'reload', '--name', name]);
      let peak = 0;
      let done = false;
      void reloading.finally(() => (done = true));
      while (!done) {
        const now = await status(name);
        if (now.reload?.state === 'probation') peak = Math.max(peak, rss(now));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await reloading;
      probations.push(peak);
    }
    const beforeBytes = median(befores);
    const probationBytes = median(probations);
    return { mode, beforeBytes, probationBytes, ratio: probationBytes / beforeBytes };
  } finally {
    await supervisor.stop();
  }
}

export async function rollbackMemory(options: { rounds: number }): Promise<RollbackMemory[]> {
  return [await measure('parked', options.rounds), await measure('none', options.rounds)];
}
