/**
 * `nodescale demo --scale-out`: the talk's final picture on one machine. The corpus; Redis and RabbitMQ (private
 * ones started from the PATH, or the ones given); the API tier (N tagger workers under `nodescale run`, extraction
 * over the broker, cache and index in Redis) and the compute tier (M `nodescale compute-worker tagger` under another
 * `nodescale run`), each with its metrics and consoles. Ctrl-C stops it all in order: the API first (it stops taking
 * requests), then the compute services (they finish what they hold), then the broker and Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startCorpusServer, type CorpusServer } from '../corpus/server.ts';
import { NodescaleError } from '../errors.ts';
import {
  announceListening,
  listenForAnnouncements,
  type AnnouncementListener,
  type ListeningAnnouncement,
} from '../ipc.ts';
import { eachLine } from '../lines.ts';
import { redactUrl } from '../redact.ts';
import { epmdRunning, rabbitMqExecutable, startRabbitMq, stopEpmd, type RabbitMqNode } from '../servers/rabbitmq.ts';
import { redisExecutable, startRedis, type RedisServer } from '../servers/redis.ts';
import { SECRET_URL_ENV } from './args.ts';
import type { Io } from './io.ts';

export interface ScaleOutArgs {
  port: number;
  corpusPort: number;
  metricsPort: number;
  computeMetricsPort: number;
  workers: number;
  computeWorkers: number;
  name: string;
  /** A running broker to use instead of starting one. */
  broker?: string;
  /** A running Redis to use instead of starting one. */
  store?: string;
}

/** One `nodescale run`, and what it announced. */
interface Tier {
  child: ChildProcess;
  exited: Promise<number>;
  announced: ListeningAnnouncement[];
  announcements: AnnouncementListener;
}

/** The servers this is to start, checked before anything starts: one line naming all that is missing. */
function checkInstalled(args: ScaleOutArgs): void {
  const missing: string[] = [];
  const check = (needed: boolean, find: () => string, debianPackage: string) => {
    if (!needed) return;
    try {
      find();
    } catch (error) {
      if (!(error instanceof NodescaleError) || error.code !== 'NS_ERR_NOT_INSTALLED') throw error;
      missing.push(debianPackage);
    }
  };
  check(args.store === undefined, redisExecutable, 'redis-server');
  check(args.broker === undefined, rabbitMqExecutable, 'rabbitmq-server');
  if (missing.length === 0) return;
  throw new NodescaleError(
    'NS_ERR_NOT_INSTALLED',
    `demo --scale-out needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')} (or give --store redis://… and --broker amqp://… of running ones)`,
  );
}

function banner(args: ScaleOutArgs, at: Record<string, string>): string {
  const api = at.api!;
  const query = `curl -s ${api}/graphql -H 'content-type: application/json' -d '{"query":"{ tags(url: \\"${at.corpus}/articles/astronomy-1.html\\") }"}'`;
  return `
nodescale demo --scale-out: the API tier and the compute tier, split by a broker, sharing Redis

  API tier      ${args.workers} tagger worker(s) under nodescale run --name ${args.name}
                ${api}/graphql   (tags(url), urls(tag), health)
                metrics ${at.metrics}
  compute tier  ${args.computeWorkers} compute service(s) under nodescale run --name ${args.name}-compute
                metrics ${at.computeMetrics}
  broker        ${at.broker}   (RabbitMQ: the task queue)
  store         ${at.store}   (Redis: the tags cache and the reverse index)
  corpus        ${at.corpus}/

Try:
  ${query}
  curl -s '${api}/graphql?query=%7Burls(tag:%22telescope%22)%20health%7Bstatus%20pid%7D%7D'
  npx nodescale bench ${api}/benchmark/get-tags -c 8 -d 10s
  npx nodescale bench ${api}/benchmark/get-urls -R 50 -d 10s     (beside the get-tags load: p99 stays low)
  npx nodescale scale 2 --name ${args.name}-compute      (or --name ${args.name}: either tier)
  npx nodescale status --name ${args.name}-compute       (then kill -9 a compute worker's pid: nothing is lost)
  npx nodescale reload --name ${args.name}               (under load: no request dropped, the index kept)

Ctrl-C stops everything: the API tier, then the compute tier, then the broker and Redis.
`;
}

async function startTier(
  label: string,
  argv: string[],
  /** The broker's and the store's URLs, in the environment: never on a command line others can read. */
  secrets: Record<string, string>,
  io: Io,
  onAnnouncement: (announcement: ListeningAnnouncement) => void,
): Promise<Tier> {
  const announced: ListeningAnnouncement[] = [];
  const announcements = await listenForAnnouncements((announcement) => {
    announced.push(announcement);
    onAnnouncement(announcement);
  });
  const child = spawn(process.execPath, argv, {
    // A process group of its own: Ctrl-C reaches only the demo, which stops the tiers in order.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...announcements.env, ...secrets },
  });
  eachLine(child.stdout!, (line) => io.stdout.write(`[${label}] ${line}\n`));
  eachLine(child.stderr!, (line) => io.stderr.write(`[${label}] ${line}\n`));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
  return { child, exited, announced, announcements };
}

/** SIGTERM (the supervisor stops its workers gracefully), and its exit code once it is gone. */
async function stopTier(tier: Tier | null): Promise<number> {
  if (tier === null) return 0;
  if (tier.child.exitCode === null && tier.child.signalCode === null) tier.child.kill('SIGTERM');
  const code = await tier.exited;
  tier.announcements.close();
  return code;
}

/** `nodescale run <bin> …` for one tier. */
const supervise = (bin: string, name: string, workers: number, metricsPort: number, app: string[]) => [
  bin,
  'run',
  bin,
  '-w',
  String(workers),
  '--name',
  name,
  '--console',
  '--metrics',
  String(metricsPort),
  // A short probation, so that the banner's `reload` answers in seconds (a deployment keeps the default).
  '--probation',
  '5s',
  '--',
  ...app,
];

export async function runScaleOut(args: ScaleOutArgs, bin: string, io: Io): Promise<number> {
  checkInstalled(args);
  let corpus: CorpusServer | null = null;
  let redis: RedisServer | null = null;
  let broker: RabbitMqNode | null = null;
  let api: Tier | null = null;
  let compute: Tier | null = null;
  // A RabbitMQ node starts Erlang's port mapper if none runs, and leaves it: the demo stops what it started.
  const epmdBefore = args.broker === undefined ? await epmdRunning() : true;
  let stopping: Promise<number> | null = null;
  const stopAll = (): Promise<number> =>
    (stopping ??= (async () => {
      const codes = [await stopTier(api), await stopTier(compute)];
      await Promise.all([broker?.stop(), redis?.stop(), corpus?.close()]);
      if (broker !== null && !epmdBefore) stopEpmd();
      return codes.every((code) => code === 0) ? 0 : 1;
    })());
  let stop!: () => void;
  const stopped = new Promise<'stopped'>((resolve) => (stop = () => resolve('stopped')));
  io.signal.addEventListener('abort', stop, { once: true });
  process.once('SIGTERM', stop);
  try {
    const starting = ['the corpus', ...(args.store === undefined ? ['redis-server'] : [])];
    if (args.broker === undefined) starting.push('rabbitmq-server (about 10 s)');
    io.stderr.write(`nodescale demo --scale-out: starting ${starting.join(', ')}\n`);
    // Each server is recorded as soon as it is up, so that one failing to start does not leave the others running.
    const [corpusStart, redisStart, brokerStart] = await Promise.allSettled([
      startCorpusServer({ port: args.corpusPort }),
      args.store === undefined ? startRedis() : null,
      args.broker === undefined ? startRabbitMq() : null,
    ]);
    if (corpusStart.status === 'fulfilled') corpus = corpusStart.value;
    if (redisStart.status === 'fulfilled') redis = redisStart.value;
    if (brokerStart.status === 'fulfilled') broker = brokerStart.value;
    for (const outcome of [corpusStart, redisStart, brokerStart])
      if (outcome.status === 'rejected') throw outcome.reason;
    if (corpus === null) throw new Error('unreachable: the corpus started');
    const brokerUrl = args.broker ?? broker!.url;
    const storeUrl = args.store ?? redis!.url;
    const at: Record<string, string> = { corpus: corpus.url, broker: redactUrl(brokerUrl), store: redactUrl(storeUrl) };
    let ready!: () => void;
    const allReady = new Promise<'ready'>((resolve) => (ready = () => resolve('ready')));
    const check = () => {
      // Every worker of both tiers, not just the first: the banner means everything answers.
      const count = (tier: Tier | null, service: string) =>
        tier?.announced.filter((a) => a.service === service).length ?? 0;
      if (
        at.metrics &&
        at.computeMetrics &&
        count(api, 'tagger') >= args.workers &&
        count(compute, 'compute-worker') >= args.computeWorkers
      )
        ready();
    };
    // The compute tier first: the API's first calls find consumers.
    compute = await startTier(
      'compute',
      supervise(bin, `${args.name}-compute`, args.computeWorkers, args.computeMetricsPort, [
        'compute-worker',
        'tagger',
      ]),
      { [SECRET_URL_ENV.broker]: brokerUrl },
      io,
      (a) => {
        if (a.service === 'metrics') at.computeMetrics ??= a.url;
        check();
      },
    );
    api = await startTier(
      'api',
      supervise(bin, args.name, args.workers, args.metricsPort, [
        'tagger',
        '--port',
        String(args.port),
        '--compute',
        'amqp',
        '--allow',
        '127.0.0.1',
        '--corpus-url',
        corpus.url,
      ]),
      { [SECRET_URL_ENV.broker]: brokerUrl, [SECRET_URL_ENV.store]: storeUrl },
      io,
      (a) => {
        if (a.service === 'tagger') at.api ??= a.url;
        if (a.service === 'metrics') at.metrics ??= a.url;
        check();
      },
    );
    // Ctrl-C (or SIGTERM) at any point stops everything; a tier that ends by itself ends the demo.
    const tierEnded = Promise.race([api.exited, compute.exited]).then(() => 'tier ended' as const);
    let outcome = await Promise.race([allReady, stopped, tierEnded]);
    if (outcome === 'ready') {
      io.stdout.write(banner(args, at));
      // For a program that started the demo (the benches): where the API answers, once everything does.
      announceListening('demo', at.api!);
      outcome = await Promise.race([stopped, tierEnded]);
    }
    if (outcome === 'tier ended') io.stderr.write('nodescale demo --scale-out: a tier exited; stopping the rest\n');
    const code = await stopAll();
    io.stderr.write('nodescale demo --scale-out: stopped\n');
    return outcome === 'stopped' ? code : 1;
  } catch (error) {
    await stopAll();
    throw error;
  } finally {
    io.signal.removeEventListener('abort', stop);
    process.off('SIGTERM', stop);
  }
}
