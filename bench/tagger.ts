/**
 * The talk's finding, reproduced: while /benchmark/get-tags load saturates extraction, how fast does
 * /benchmark/get-urls (no extraction, an index lookup) answer, with extraction on the API's event loop
 * (--compute inline, the monolith) and off it (--compute pool)? Side by side, one run:
 * - get-urls p99 inline ÷ pool (goal ≥ 10), measured in the open model (50 req/s, latency from the intended send
 *   time) by a separate `nodescale bench` process;
 * - the API's event-loop delay p99 with the pool (goal < 20 ms), read from its own /metrics each second;
 * - get-tags throughput in both modes.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runBench } from '../src/loadtest/run.ts';
import { startRabbitMq } from '../src/servers/rabbitmq.ts';
import { median, NODESCALE, processCpuMs, startNodescaleService, startProcess } from './lib.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TaggerModeFigures {
  compute: string;
  getTagsPerSecond: number;
  getTagsErrors: number;
  getUrlsP99Ms: number;
  getUrlsP50Ms: number;
  getUrlsErrors: number;
  /** By kind (connect, reset, timeout, parse, non2xx), when there were any. */
  getUrlsErrorKinds: Record<string, number>;
  /** Per-second event-loop delay p99 of the API, ms: the median and the worst second. */
  eventLoopP99Ms: { median: number; max: number };
  /**
   * CPU time per get-tags request, ms, by process (the API, and with amqp the compute service and the broker),
   * measured over the loaded window: where the machine's two cores go.
   */
  cpuMsPerGetTags: Record<string, number>;
}

export interface TaggerFigures {
  modes: TaggerModeFigures[];
  /** get-tags req/s, amqp on a classic queue ÷ pool. */
  amqpClassicThroughputRatio: number;
  /** get-urls p99, inline ÷ amqp (quorum). */
  amqpP99Ratio: number;
  /** get-tags req/s, amqp ÷ pool. */
  amqpThroughputRatio: number;
  /** get-urls p99, inline ÷ pool. */
  p99Ratio: number;
}

async function eventLoopP99(api: string): Promise<number | null> {
  const text = await fetch(`${api}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const match = /^nodescale_eventloop_delay_p99_seconds (\S+)$/m.exec(text);
  return match ? Number(match[1]) * 1000 : null;
}

export async function measureMode(
  compute: 'inline' | 'pool' | 'amqp',
  corpusUrl: string,
  seconds: number,
  extra: string[] = [],
  others: Record<string, number> = {},
): Promise<TaggerModeFigures> {
  const {
    url: api,
    stop,
    child,
  } = await startNodescaleService(
    // No shedding in either mode: with it, the runtime answers the monolith's overload with 503s (the point of
    // nodescale/runtime, measured in `npm run bench -- runtime`); here the event loop itself is watched.
    [
      NODESCALE,
      'tagger',
      '--port',
      '0',
      '--compute',
      compute,
      '--allow',
      '127.0.0.1',
      '--corpus-url',
      corpusUrl,
      '--no-shedding',
      ...extra,
    ],
    'tagger',
    // Not pinned: the pool's thread gets the other core, as it would in production.
    { pin: false },
  );
  try {
    return await measureUnderLoad(compute, api, seconds, { api: child.pid!, ...others });
  } finally {
    await stop();
  }
}

/**
 * The measurement itself, on an API that runs: get-tags load at 8 connections, get-urls probed at 50 req/s (open
 * model) by a separate `nodescale bench`, the API's event-loop p99 each second, and the CPU of `processes`.
 */
export async function measureUnderLoad(
  compute: string,
  api: string,
  seconds: number,
  processes: Record<string, number>,
): Promise<TaggerModeFigures> {
  // Warm up: JIT, the NLP model in each thread, the index (get-urls has URLs to return).
  await runBench({ url: `${api}/benchmark/get-tags`, connections: 4, durationMs: 3000 });
  const cpu = () => Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, processCpuMs(pid)]));
  const cpuBefore = cpu();
  const loops: number[] = [];
  const sampling = setInterval(() => void eventLoopP99(api).then((v) => v !== null && loops.push(v)), 1000);
  const probe = run(
    process.execPath,
    [
      NODESCALE,
      'bench',
      `${api}/benchmark/get-urls`,
      '-R',
      '50',
      '-c',
      '8',
      '-d',
      `${seconds}s`,
      '--timeout',
      '30s',
      '--json',
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const load = runBench({
    url: `${api}/benchmark/get-tags`,
    connections: 8,
    durationMs: (seconds + 2) * 1000,
    timeoutMs: 30_000,
  });
  const [probeResult, loadResult] = await Promise.all([probe, load]);
  const cpuAfter = cpu();
  clearInterval(sampling);
  const urls = JSON.parse(probeResult.stdout) as {
    latencyMs: { p50: number; p99: number };
    errors: Record<string, number> & { total: number };
    statusCodes: Record<string, number>;
  };
  return {
    compute,
    getTagsPerSecond: loadResult.requests.perSecond,
    getTagsErrors: loadResult.errors.total,
    getUrlsP99Ms: urls.latencyMs.p99,
    getUrlsP50Ms: urls.latencyMs.p50,
    getUrlsErrors: urls.errors.total,
    getUrlsErrorKinds: Object.fromEntries(
      Object.entries({
        ...urls.errors,
        ...Object.fromEntries(
          Object.entries(urls.statusCodes)
            .filter(([code]) => code !== '200')
            .map(([code, n]) => [`status ${code}`, n]),
        ),
      }).filter(([kind, n]) => kind !== 'total' && n > 0),
    ),
    eventLoopP99Ms: { median: median(loops), max: Math.max(...loops) },
    cpuMsPerGetTags: Object.fromEntries(
      Object.keys(processes).map((name) => [
        name,
        (cpuAfter[name]! - cpuBefore[name]!) / Math.max(1, loadResult.requests.total),
      ]),
    ),
  };
}

export async function taggerSplit(options: { seconds: number }): Promise<TaggerFigures> {
  const corpus = await startNodescaleService([NODESCALE, 'corpus', 'serve', '--port', '0'], 'corpus', { pin: false });
  try {
    const modes: TaggerModeFigures[] = [];
    for (const compute of ['inline', 'pool'] as const) {
      console.error(
        `  --compute ${compute}: get-tags at 8 connections, get-urls probed at 50 req/s for ${options.seconds} s`,
      );
      modes.push(await measureMode(compute, corpus.url, options.seconds));
      await sleep(500);
    }
    // The talk's split across processes: the API and one compute service (one thread, as the pool has here) behind
    // a private RabbitMQ, its task queue a quorum queue (the default) and a classic one.
    const broker = await startRabbitMq();
    try {
      for (const queueType of ['quorum', 'classic'] as const) {
        console.error(
          `  --compute amqp: the same, extraction on \`nodescale compute-worker tagger\`, ${queueType} queue`,
        );
        const queue = `tagger.${queueType}`;
        const worker = await startProcess(
          [
            NODESCALE,
            'compute-worker',
            'tagger',
            '--broker',
            broker.url,
            '--threads',
            '1',
            '--queue',
            queue,
            '--queue-type',
            queueType,
          ],
          /compute-worker: consuming/,
          { pin: false },
        );
        try {
          const figures = await measureMode(
            'amqp',
            corpus.url,
            options.seconds,
            ['--broker', broker.url, '--queue', queue],
            { 'compute service': worker.child.pid!, broker: broker.pid()! },
          );
          modes.push({ ...figures, compute: `amqp ${queueType}` });
        } finally {
          await worker.stop();
        }
      }
    } finally {
      await broker.stop();
    }
    const [inline, pool, quorum, classic] = modes as [
      TaggerModeFigures,
      TaggerModeFigures,
      TaggerModeFigures,
      TaggerModeFigures,
    ];
    return {
      modes,
      p99Ratio: inline.getUrlsP99Ms / pool.getUrlsP99Ms,
      amqpP99Ratio: inline.getUrlsP99Ms / quorum.getUrlsP99Ms,
      amqpThroughputRatio: quorum.getTagsPerSecond / pool.getTagsPerSecond,
      amqpClassicThroughputRatio: classic.getTagsPerSecond / pool.getTagsPerSecond,
    };
  } finally {
    await corpus.stop();
  }
}
