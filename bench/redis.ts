/**
 * The tagger's shared store, measured (docs/demo.md):
 * - the client: get-urls' own command (SMEMBERS of a tag's set of 20 URLs) through node-redis (@redis/client, what
 *   the store uses) and ioredis, the same loop, 1 and 32 in flight, against one private redis-server, in
 *   alternating rounds;
 * - the price of sharing: /benchmark/get-urls through the tagger with `--store redis` ÷ with the embedded store,
 *   one process each, the same load (8 connections, closed model), req/s and p99.
 *
 *   npm run bench -- redis
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient } from '@redis/client';
import { startRedis } from '../src/servers/redis.ts';
import { load, rpcLoad } from './amqp-clients.ts';
import { median, NODESCALE, startNodescaleService } from './lib.ts';
import { measureMode, measureUnderLoad, type TaggerModeFigures } from './tagger.ts';

const run = promisify(execFile);

interface Lookup {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

const KEY = '{bench}:tag:telescope';

const CLIENTS: Record<string, (url: string) => Promise<Lookup>> = {
  'node-redis': async (url) => {
    const client = createClient({ url, disableOfflineQueue: true });
    client.on('error', () => {});
    await client.connect();
    return { call: () => client.sendCommand(['SMEMBERS', KEY]), close: () => client.close() };
  },
  ioredis: async (url) => {
    const { Redis } = await load('ioredis');
    const client = new Redis(url, { enableOfflineQueue: false, lazyConnect: true });
    client.on('error', () => {});
    await client.connect();
    return {
      call: () => client.smembers(KEY),
      close: async () => void (await client.quit()),
    };
  },
};

export interface RedisClientFigures {
  client: string;
  /** Median of the rounds: calls/s and p50 at 1 in flight, calls/s at 32. */
  one: number;
  p50Ms: number;
  thirtyTwo: number;
}

export async function redisClients(options: { seconds: number; rounds: number }): Promise<RedisClientFigures[]> {
  const redis = await startRedis();
  try {
    const raw = createClient({ url: redis.url });
    await raw.connect();
    const urls = Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:8080/articles/a-${i}.html`);
    await raw.sendCommand(['SADD', KEY, ...urls]);
    await raw.close();
    const samples = new Map<string, { one: number[]; p50: number[]; many: number[] }>();
    for (let round = 0; round < options.rounds; round++) {
      for (const [name, open] of Object.entries(CLIENTS)) {
        const client = await open(redis.url);
        const rpc = { call: () => client.call() as Promise<Buffer> };
        await rpcLoad(rpc, 32, 500); // warm-up
        const one = await rpcLoad(rpc, 1, options.seconds * 1000);
        const many = await rpcLoad(rpc, 32, options.seconds * 1000);
        await client.close();
        const s = samples.get(name) ?? { one: [], p50: [], many: [] };
        s.one.push(one.perSecond);
        s.p50.push(one.p50Ms);
        s.many.push(many.perSecond);
        samples.set(name, s);
      }
    }
    return [...samples].map(([client, s]) => ({
      client,
      one: median(s.one),
      p50Ms: median(s.p50),
      thirtyTwo: median(s.many),
    }));
  } finally {
    await redis.stop();
  }
}

export interface StoreFigures {
  store: string;
  getUrlsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** get-urls through one tagger process with each store: the same index (the corpus's pages tagged), the same load. */
export async function storeGetUrls(options: { seconds: number }): Promise<{ stores: StoreFigures[]; ratio: number }> {
  const redis = await startRedis();
  const corpus = await startNodescaleService([NODESCALE, 'corpus', 'serve', '--port', '0'], 'corpus', { pin: false });
  try {
    const stores: StoreFigures[] = [];
    for (const store of ['embedded', redis.url]) {
      const api = await startNodescaleService(
        [
          NODESCALE,
          'tagger',
          '--port',
          '0',
          '--threads',
          '1',
          '--store',
          store,
          '--allow',
          '127.0.0.1',
          '--corpus-url',
          corpus.url,
          '--no-shedding',
        ],
        'tagger',
      );
      try {
        // Index the corpus (60 pages) through the benchmark route, then measure the lookups alone.
        await run(process.execPath, [NODESCALE, 'bench', `${api.url}/benchmark/get-tags`, '-c', '4', '-n', '120']);
        const { stdout } = await run(
          process.execPath,
          [NODESCALE, 'bench', `${api.url}/benchmark/get-urls`, '-c', '8', '-d', `${options.seconds}s`, '--json'],
          { maxBuffer: 16 * 1024 * 1024 },
        );
        const result = JSON.parse(stdout) as {
          requests: { perSecond: number };
          latencyMs: { p50: number; p99: number };
          errors: { total: number };
        };
        stores.push({
          store: store === 'embedded' ? 'embedded' : 'redis',
          getUrlsPerSecond: result.requests.perSecond,
          p50Ms: result.latencyMs.p50,
          p99Ms: result.latencyMs.p99,
          errors: result.errors.total,
        });
      } finally {
        await api.stop();
      }
    }
    return { stores, ratio: stores[1]!.getUrlsPerSecond / stores[0]!.getUrlsPerSecond };
  } finally {
    await corpus.stop();
    await redis.stop();
  }
}

/**
 * The talk's finding across processes: get-urls p99 under get-tags load with `nodescale demo --scale-out` (API tier
 * and compute tier split by RabbitMQ, state in Redis) ÷ the monolith (`nodescale tagger --compute inline`, one
 * process), measured the same way (bench/tagger.ts) in one run.
 */
export async function scaleOutSplit(options: {
  seconds: number;
}): Promise<{ modes: TaggerModeFigures[]; p99Ratio: number }> {
  const corpus = await startNodescaleService([NODESCALE, 'corpus', 'serve', '--port', '0'], 'corpus', { pin: false });
  const modes: TaggerModeFigures[] = [];
  try {
    console.error(
      `  the monolith (--compute inline): get-tags at 8 connections, get-urls at 50 req/s, ${options.seconds} s`,
    );
    modes.push(await measureMode('inline', corpus.url, options.seconds));
  } finally {
    await corpus.stop();
  }
  console.error('  demo --scale-out (its defaults): the same');
  const demo = await startNodescaleService(
    [
      NODESCALE,
      'demo',
      '--scale-out',
      ...['--port', '0', '--corpus-port', '0', '--metrics-port', '0', '--compute-metrics-port', '0'],
      ...['--dashboard-port', '0', '--name', `bench-${process.pid}`],
    ],
    'demo',
    { pin: false },
  );
  try {
    modes.push(await measureUnderLoad('scale-out', demo.url, options.seconds, {}));
  } finally {
    await demo.stop();
  }
  return { modes, p99Ratio: modes[0]!.getUrlsP99Ms / modes[1]!.getUrlsP99Ms };
}
