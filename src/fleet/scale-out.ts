/**
 * The talk's final picture on one machine, as a function the CLI (`nodescale demo --scale-out`) and the fleet lab
 * use: the corpus; Redis and RabbitMQ (private ones started from the PATH, or the ones given); the API tier (N tagger
 * workers under `nodescale run`, extraction over the broker, cache and index in Redis) and the compute tier (M
 * `nodescale compute-worker tagger` under another `nodescale run`), each with its metrics and consoles. stop() stops
 * it all in order: the API first (it stops taking requests), then the compute services (they finish what they hold),
 * then the broker and Redis. What it prints, and when it stops, is the caller's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startCorpusServer, type CorpusServer } from '../corpus/server.ts';
import { NodescaleError } from '../errors.ts';
import {
  listenForAnnouncements,
  SECRET_URL_ENV,
  type AnnouncementListener,
  type ListeningAnnouncement,
} from '../ipc.ts';
import { eachLine } from '../lines.ts';
import { redactUrl } from '../redact.ts';
import { epmdRunning, rabbitMqExecutable, startRabbitMq, stopEpmd, type RabbitMqNode } from '../servers/rabbitmq.ts';
import { redisExecutable, startRedis, type RedisServer } from '../servers/redis.ts';

export interface ScaleOutOptions {
  /** The nodescale CLI to run the tiers with (bin/nodescale.js). */
  bin: string;
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
  /** Each line a tier writes, with the tier's name ('api', 'compute'). */
  output(tier: string, stream: 'stdout' | 'stderr', line: string): void;
}

/** Where everything answers (the broker and the store redacted: no password). */
export interface ScaleOutAddresses {
  api: string;
  metrics: string;
  computeMetrics: string;
  broker: string;
  store: string;
  corpus: string;
}

export interface ScaleOut {
  readonly at: ScaleOutAddresses;
  /** Settles when a tier exits by itself (a supervisor gave up). */
  readonly tierEnded: Promise<void>;
  /** Stops everything in order; 0 when both tiers stopped cleanly. */
  stop(): Promise<number>;
}

/** One `nodescale run`, and what it announced. */
interface Tier {
  child: ChildProcess;
  exited: Promise<number>;
  announced: ListeningAnnouncement[];
  announcements: AnnouncementListener;
}

/** The servers this is to start, checked before anything starts: one line naming all that is missing. */
export function checkScaleOutInstalled(options: Pick<ScaleOutOptions, 'broker' | 'store'>): void {
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
  check(options.store === undefined, redisExecutable, 'redis-server');
  check(options.broker === undefined, rabbitMqExecutable, 'rabbitmq-server');
  if (missing.length === 0) return;
  throw new NodescaleError(
    'NS_ERR_NOT_INSTALLED',
    `demo --scale-out needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')} (or give --store redis://… and --broker amqp://… of running ones)`,
  );
}

async function startTier(
  label: string,
  argv: string[],
  /** The broker's and the store's URLs, in the environment: never on a command line others can read. */
  secrets: Record<string, string>,
  output: ScaleOutOptions['output'],
  onAnnouncement: (announcement: ListeningAnnouncement) => void,
): Promise<Tier> {
  const announced: ListeningAnnouncement[] = [];
  const announcements = await listenForAnnouncements((announcement) => {
    announced.push(announcement);
    onAnnouncement(announcement);
  });
  const child = spawn(process.execPath, argv, {
    // A process group of its own: Ctrl-C reaches only the caller, which stops the tiers in order.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...announcements.env, ...secrets },
  });
  eachLine(child.stdout, (line) => output(label, 'stdout', line));
  eachLine(child.stderr, (line) => output(label, 'stderr', line));
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

/**
 * Starts everything and resolves once every worker of both tiers answers. `signal` aborts the start: what did start
 * is stopped, and it rejects with the signal's reason. A failure to start stops what did start, then rejects.
 */
export async function startScaleOut(options: ScaleOutOptions, signal?: AbortSignal): Promise<ScaleOut> {
  checkScaleOutInstalled(options);
  let corpus: CorpusServer | null = null;
  let redis: RedisServer | null = null;
  let broker: RabbitMqNode | null = null;
  let api: Tier | null = null;
  let compute: Tier | null = null;
  // A RabbitMQ node starts Erlang's port mapper if none runs, and leaves it: this stops what it started.
  const epmdBefore = options.broker === undefined ? await epmdRunning() : true;
  let stopping: Promise<number> | null = null;
  const stop = (): Promise<number> =>
    (stopping ??= (async () => {
      const codes = [await stopTier(api), await stopTier(compute)];
      await Promise.all([broker?.stop(), redis?.stop(), corpus?.close()]);
      if (broker !== null && !epmdBefore) stopEpmd();
      return codes.every((code) => code === 0) ? 0 : 1;
    })());
  const aborted = new Promise<never>((_resolve, reject) => {
    const onAbort = () => {
      const reason: unknown = signal!.reason;
      reject(reason instanceof Error ? reason : new Error('aborted'));
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    // Each server is recorded as soon as it is up, so that one failing to start does not leave the others running.
    const [corpusStart, redisStart, brokerStart] = await Promise.allSettled([
      startCorpusServer({ port: options.corpusPort }),
      options.store === undefined ? startRedis() : null,
      options.broker === undefined ? startRabbitMq() : null,
    ]);
    if (corpusStart.status === 'fulfilled') corpus = corpusStart.value;
    if (redisStart.status === 'fulfilled') redis = redisStart.value;
    if (brokerStart.status === 'fulfilled') broker = brokerStart.value;
    for (const outcome of [corpusStart, redisStart, brokerStart])
      if (outcome.status === 'rejected') throw outcome.reason;
    if (signal?.aborted) throw signal.reason;
    const brokerUrl = options.broker ?? broker!.url;
    const storeUrl = options.store ?? redis!.url;
    const at: Partial<ScaleOutAddresses> = {
      corpus: corpus!.url,
      broker: redactUrl(brokerUrl),
      store: redactUrl(storeUrl),
    };
    let ready!: () => void;
    const allReady = new Promise<'ready'>((resolve) => (ready = () => resolve('ready')));
    const check = () => {
      // Every worker of both tiers, not just the first: ready means everything answers.
      const count = (tier: Tier | null, service: string) =>
        tier?.announced.filter((a) => a.service === service).length ?? 0;
      if (
        at.metrics &&
        at.computeMetrics &&
        count(api, 'tagger') >= options.workers &&
        count(compute, 'compute-worker') >= options.computeWorkers
      )
        ready();
    };
    // The compute tier first: the API's first calls find consumers.
    compute = await startTier(
      'compute',
      supervise(options.bin, `${options.name}-compute`, options.computeWorkers, options.computeMetricsPort, [
        'compute-worker',
        'tagger',
      ]),
      { [SECRET_URL_ENV.broker]: brokerUrl },
      options.output,
      (a) => {
        if (a.service === 'metrics') at.computeMetrics ??= a.url;
        check();
      },
    );
    api = await startTier(
      'api',
      supervise(options.bin, options.name, options.workers, options.metricsPort, [
        'tagger',
        '--port',
        String(options.port),
        '--compute',
        'amqp',
        '--allow',
        '127.0.0.1',
        '--corpus-url',
        corpus!.url,
      ]),
      { [SECRET_URL_ENV.broker]: brokerUrl, [SECRET_URL_ENV.store]: storeUrl },
      options.output,
      (a) => {
        if (a.service === 'tagger') at.api ??= a.url;
        if (a.service === 'metrics') at.metrics ??= a.url;
        check();
      },
    );
    const tierEnded = Promise.race([api.exited, compute.exited]).then(() => {});
    const started = await Promise.race([allReady, tierEnded.then(() => 'tier ended' as const), aborted]);
    if (started === 'tier ended')
      throw new NodescaleError('NS_ERR_SERVER_START', 'demo --scale-out: a tier exited before it was ready');
    return { at: at as ScaleOutAddresses, tierEnded, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
