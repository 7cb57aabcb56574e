/**
 * `nodescale run`'s two claims, measured side by side in one run:
 * - overhead: throughput of `nodescale run -w 2` ÷ a bare node:cluster primary with 2 workers, same app (goal ≥ 0.98);
 * - reload under load: failed requests during 5 consecutive rolling reloads of an app that takes --startup-ms to get
 *   ready (goal 0), next to pm2 reload with its default settings on the same app, if pm2 installs from npm;
 * - the same for a plain node:http app (`server.close(() => process.exit(0))` on SIGTERM and SIGINT, no runtime) under
 *   16 keep-alive connections: nodescale run with its drain preload (goal 0), without it, and pm2.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { runBench } from '../src/loadtest/run.ts';
import type { BenchResult } from '../src/loadtest/aggregate.ts';
import { BENCH_DIR, installBenchTools, median, NODESCALE, startProcess } from './lib.ts';

const APP = path.join(BENCH_DIR, 'servers', 'http.ts');
const CLUSTER = path.join(BENCH_DIR, 'servers', 'cluster.ts');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RunOverhead {
  pairs: number;
  /** Per pair: nodescale run ÷ bare cluster. */
  ratios: number[];
  ratio: number;
}

export async function runOverhead(options: {
  seconds: number;
  pairs: number;
  connections: number;
}): Promise<RunOverhead> {
  const [portRun, portCluster] = [await freePort(), await freePort()];
  const supervised = await startProcess(
    [NODESCALE, 'run', APP, '-w', '2', '--name', `bench-${process.pid}`, '--', '--port', String(portRun)],
    /2 worker\(s\) ready/,
  );
  const bare = await startProcess([CLUSTER, '--workers', '2', '--port', String(portCluster)], /listening/);
  try {
    const load = { connections: options.connections, durationMs: options.seconds * 1000, warmupMs: 500 };
    const urls = [`http://127.0.0.1:${portRun}/`, `http://127.0.0.1:${portCluster}/`] as const;
    await Promise.all(urls.map((url) => runBench({ url, connections: options.connections, durationMs: 3000 })));
    const ratios: number[] = [];
    for (let pair = 0; pair < options.pairs; pair++) {
      const [ours, baseline] = await Promise.all(urls.map((url) => runBench({ url, ...load })));
      ratios.push(ours!.requests.perSecond / baseline!.requests.perSecond);
      console.error(`  pair ${pair + 1}: nodescale run ÷ bare cluster ${ratios.at(-1)!.toFixed(3)}`);
    }
    return { pairs: options.pairs, ratios, ratio: median(ratios) };
  } finally {
    await Promise.all([supervised.stop(), bare.stop()]);
  }
}

export interface ReloadFigures {
  tool: string;
  app: 'protected' | 'plain';
  workers: number;
  reloads: number;
  /** Reloads the tool itself reported as failed. */
  reloadFailures: number;
  requests: number;
  failed: number;
  errors: BenchResult['errors'];
  seconds: number;
}

/** Keeps `connections` busy on `url` while `reloadOnce` runs `reloads` times in a row; counts what failed. */
async function reloadsUnderLoad(
  tool: string,
  app: ReloadFigures['app'],
  workers: number,
  url: string,
  reloads: number,
  reloadOnce: () => Promise<boolean>,
): Promise<ReloadFigures> {
  const stopLoad = new AbortController();
  const started = performance.now();
  const load = runBench(
    { url, connections: app === 'plain' ? 16 : 8, durationMs: 3_600_000 },
    { signal: stopLoad.signal },
  );
  await sleep(1000);
  let reloadFailures = 0;
  for (let i = 0; i < reloads; i++) {
    if (!(await reloadOnce())) reloadFailures++;
    console.error(`  ${tool}, ${workers} worker(s): reload ${i + 1} of ${reloads} done`);
  }
  await sleep(1000);
  stopLoad.abort();
  const result = await load;
  return {
    tool,
    app,
    workers,
    reloads,
    reloadFailures,
    requests: result.requests.total,
    failed: result.errors.total,
    errors: result.errors,
    seconds: (performance.now() - started) / 1000,
  };
}

export async function reloadUnderLoad(options: {
  reloads: number;
  startupMs: number;
  workers: number[];
  plainWorkers: number[];
}): Promise<ReloadFigures[]> {
  // The same app for both: protected by nodescale/runtime, whose graceful shutdown (on SIGTERM from nodescale run,
  // SIGINT from pm2) hands keep-alive connections over cleanly. Without it, a plain server.close() races clients
  // that send on a keep-alive connection as it is closed: both supervisors then lose requests to resets.
  const appArgs = ['--startup-ms', String(options.startupMs), '--protect', '{}'];
  const pm2 = installBenchTools() ? path.join(BENCH_DIR, 'node_modules', '.bin', 'pm2') : null;
  if (pm2 === null || !existsSync(pm2))
    console.error('  pm2 could not be installed from npm: measuring nodescale run alone');
  const figures: ReloadFigures[] = [];
  for (const workers of options.workers) {
    figures.push(await reloadNodescale('protected', workers, options.reloads, appArgs));
    if (pm2 !== null && existsSync(pm2))
      figures.push(await reloadPm2(pm2, 'protected', workers, options.reloads, appArgs));
  }
  // The plain app, as most apps are written: no runtime, server.close() on the signal.
  for (const workers of options.plainWorkers) {
    figures.push(await reloadNodescale('plain', workers, options.reloads, []));
    figures.push(await reloadNodescale('plain', workers, options.reloads, [], ['--no-http-drain']));
    if (pm2 !== null && existsSync(pm2)) figures.push(await reloadPm2(pm2, 'plain', workers, options.reloads, []));
  }
  return figures;
}

async function reloadNodescale(
  app: ReloadFigures['app'],
  workers: number,
  reloads: number,
  appArgs: string[],
  runArgs: string[] = [],
): Promise<ReloadFigures> {
  const port = await freePort();
  const name = `bench-reload-${process.pid}`;
  const supervised = await startProcess(
    [
      NODESCALE,
      'run',
      APP,
      '-w',
      String(workers),
      '--name',
      name,
      '--stability',
      '1s',
      '--probation',
      '1s',
      ...runArgs,
      '--',
      '--port',
      String(port),
      ...appArgs,
    ],
    /worker\(s\) ready/,
  );
  try {
    return await reloadsUnderLoad(
      ['nodescale run', ...runArgs].join(' '),
      app,
      workers,
      `http://127.0.0.1:${port}/`,
      reloads,
      () =>
        run(process.execPath, [NODESCALE, 'reload', '--name', name]).then(
          () => true,
          () => false,
        ),
    );
  } finally {
    await supervised.stop();
  }
}

async function reloadPm2(
  pm2: string,
  app: ReloadFigures['app'],
  workers: number,
  reloads: number,
  appArgs: string[],
): Promise<ReloadFigures> {
  // Its own home: never the user's pm2 daemon.
  const home = path.join(BENCH_DIR, 'results', '.pm2');
  mkdirSync(home, { recursive: true });
  const pm2Run = (args: string[]) => run(pm2, args, { env: { ...process.env, PM2_HOME: home } });
  const port = await freePort();
  try {
    await pm2Run(['start', APP, '--name', 'nsbench', '-i', String(workers), '--', '--port', String(port), ...appArgs]);
    for (
      let i = 0;
      i < 100 &&
      !(await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.ok,
        () => false,
      ));
      i++
    )
      await sleep(200);
    return await reloadsUnderLoad('pm2 reload (defaults)', app, workers, `http://127.0.0.1:${port}/`, reloads, () =>
      pm2Run(['reload', 'nsbench']).then(
        () => true,
        () => false,
      ),
    );
  } finally {
    await pm2Run(['kill']).catch(() => {});
  }
}
