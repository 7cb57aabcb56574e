/**
 * `nodescale tagger`: the reference tagging API (src/tagger/), one process; `nodescale demo` runs it supervised.
 */
import { invalidOption, NodescaleError } from '../errors.ts';
import { announceListening } from '../ipc.ts';
import { transportNamed, transportsWith } from '../compute/transports.ts';
import { parseAllowList } from '../tagger/address-policy.ts';
import { TAGGER_DEFAULTS, type TaggerServerOptions } from '../tagger/options.ts';
import { checkStore, checkStorePrefix } from '../tagger/store.ts';
import { startTaggerServer } from '../tagger/server.ts';
import { formatBytes, formatDuration } from '../units.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  defined,
  portFlag,
  durationFlag,
  intFlag,
  listFlag,
  parseCommandLine,
  sizeFlag,
  secretUrlFlag,
  tlsFlags,
  textFlag,
} from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  compute: { type: 'string' },
  broker: { type: 'string' },
  'broker-file': { type: 'string' },
  'broker-ca': { type: 'string' },
  'broker-cert': { type: 'string' },
  'broker-key': { type: 'string' },
  'store-file': { type: 'string' },
  'store-ca': { type: 'string' },
  'store-cert': { type: 'string' },
  'store-key': { type: 'string' },
  queue: { type: 'string' },
  threads: { type: 'string' },
  allow: { type: 'string', multiple: true },
  'corpus-url': { type: 'string' },
  'max-page-size': { type: 'string' },
  'fetch-timeout': { type: 'string' },
  'max-redirects': { type: 'string' },
  cache: { type: 'string' },
  'cache-ttl': { type: 'string' },
  store: { type: 'string' },
  'store-prefix': { type: 'string' },
  'max-indexed': { type: 'string' },
  'admin-socket': { type: 'string' },
  'stall-capture': { type: 'string' },
  'no-shedding': { type: 'boolean' },
  ...COMMON_FLAGS,
} as const;

const T = TAGGER_DEFAULTS;

export const help = `Usage: nodescale tagger [options]

The talk's tagging API: GraphQL at /graphql (tags(url), urls(tag), health), the benchmark routes
/benchmark/get-tags and /benchmark/get-urls, on nodescale/runtime (/metrics, /healthz, /readyz, load shedding,
graceful shutdown on SIGTERM). Page fetches refuse private, loopback, link-local and metadata addresses unless
allowed with --allow.

Options:
      --port N              port (default ${T.port}; 0 picks a free one)
      --host H              address (default ${T.host})
      --compute T           where extraction runs: pool (worker threads, default), inline (on the event loop), or
                            amqp (compute services behind a broker: nodescale compute-worker tagger)
      --broker URL          with --compute amqp: the broker, amqp://user:pass@host:5672; or --broker-file FILE, or
                            NODESCALE_BROKER_URL (a password on the command line is readable by every local user);
                            a cluster: its nodes' URLs separated by commas
      --broker-ca FILE, --broker-cert FILE, --broker-key FILE
                            with amqps://: the CA that signed the broker's certificate, and a client certificate
                            and its key for a broker that asks for one (PEM)
      --queue NAME          with --compute amqp: the task queue (default nodescale.compute)
      --threads N           pool threads (default: usable CPUs - 1, at least 1)
      --allow LIST          addresses or CIDR ranges that may be fetched from although private (repeatable, or
                            comma-separated): --allow 127.0.0.1 for the local corpus
      --corpus-url URL      the corpus for /benchmark/get-tags (default ${T.corpusUrl})
      --max-page-size SIZE  (default ${formatBytes(T.maxPageBytes)})
      --fetch-timeout DUR   for a whole fetch, redirects included (default ${formatDuration(T.fetchTimeoutMs)})
      --max-redirects N     (default ${T.maxRedirects})
      --store S             where the tags cache and the reverse index live: embedded (in this process, default)
                            or redis://host:6379, shared by every API worker (docs/demo.md), or behind Sentinel,
                            redis-sentinel://:pass@s1:26379,s2:26379,s3:26379#master; or --store-file FILE, or
                            NODESCALE_STORE_URL
      --store-ca FILE, --store-cert FILE, --store-key FILE
                            with rediss://: the same for Redis (a client certificate for tls-auth-clients yes)
      --store-prefix P      with --store redis: the prefix of every key (default ${T.storePrefix})
      --cache-ttl DUR       how long a URL's tags stay cached (default ${formatDuration(T.cacheTtlMs)})
      --cache N             embedded store: URLs whose tags are cached (default ${T.cacheSize}; 0: none)
      --max-indexed N       URLs in the reverse index at most, the oldest dropped (default ${T.maxIndexedUrls})
      --admin-socket PATH   open the admin console on this Unix socket (nodescale console PATH)
      --no-shedding         never answer 503 under overload (to watch the event loop itself drown)
      --stall-capture DUR   catch the code that holds the event loop past DUR (stall capture: console … stalls)
  -h, --help                this help

Example:
  nodescale corpus serve & nodescale tagger --allow 127.0.0.1 --compute inline`;

export function parseTaggerArgs(argv: string[]): TaggerServerOptions & { port: number } {
  const { values } = parseCommandLine('tagger', argv, FLAGS, 0);
  const port = portFlag(values, 'port', T.port);
  const compute = textFlag(values, 'compute') ?? T.compute;
  // A transport that has a broker (its option `url`) needs one; the others take none.
  const brokered = transportNamed(compute, '--compute').optionNames.includes('url');
  const broker = secretUrlFlag(values, 'broker');
  if (brokered && broker === undefined)
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `tagger: --compute ${compute} needs the broker: --broker URL, --broker-file FILE or NODESCALE_BROKER_URL`,
    );
  if (!brokered && (textFlag(values, 'broker') ?? textFlag(values, 'broker-file')) !== undefined)
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `tagger: --broker goes with --compute ${transportsWith('url').join(' or ')}`,
    );
  const threads = intFlag(values, 'threads');
  if (threads !== undefined && threads < 1) throw invalidOption('--threads', 'a whole number ≥ 1', threads);
  const adminSocket = textFlag(values, 'admin-socket');
  const allow = listFlag(values, 'allow')
    .flatMap((a) => a.split(','))
    .map((a) => a.trim())
    .filter(Boolean);
  parseAllowList(allow, '--allow');
  const store = secretUrlFlag(values, 'store');
  const prefix = textFlag(values, 'store-prefix');
  if (prefix !== undefined && store === undefined)
    throw new NodescaleError('NS_ERR_USAGE', 'tagger: --store-prefix goes with --store redis://…');
  const maxIndexed = intFlag(values, 'max-indexed');
  if (maxIndexed !== undefined && maxIndexed < 1)
    throw invalidOption('--max-indexed', 'a whole number ≥ 1', maxIndexed);
  // Flags not given are left out: the defaults live with the options (src/tagger/).
  return {
    port,
    compute,
    allow,
    ...defined({
      host: textFlag(values, 'host'),
      threads,
      broker: brokered ? broker : undefined,
      brokerTls: tlsFlags(values, 'broker', brokered ? broker : undefined),
      storeTls: tlsFlags(values, 'store', store),
      queue: textFlag(values, 'queue'),
      corpusUrl: textFlag(values, 'corpus-url'),
      maxPageBytes: sizeFlag(values, 'max-page-size'),
      fetchTimeoutMs: durationFlag(values, 'fetch-timeout'),
      maxRedirects: intFlag(values, 'max-redirects'),
      cacheSize: intFlag(values, 'cache'),
      cacheTtlMs: durationFlag(values, 'cache-ttl'),
      store: store === undefined ? undefined : checkStore(store, '--store'),
      storePrefix: prefix === undefined ? undefined : checkStorePrefix(prefix, '--store-prefix'),
      maxIndexedUrls: maxIndexed,
    }),
    runtime: {
      ...(adminSocket === undefined ? {} : { admin: { socketPath: adminSocket } }),
      ...(boolFlag(values, 'no-shedding') ? { overload: false as const } : {}),
      ...(durationFlag(values, 'stall-capture') === undefined
        ? {}
        : { stall: { thresholdMs: durationFlag(values, 'stall-capture')! } }),
    },
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const options = parseTaggerArgs(argv);
  const api = await startTaggerServer(options);
  const { threads } = api.tagger.compute.stats();
  io.stdout.write(
    `tagger listening on ${api.url}/graphql (compute ${api.tagger.compute.transport}${threads > 0 ? `, ${threads} thread${threads === 1 ? '' : 's'}` : ''}, store ${api.tagger.store.kind})\n`,
  );
  announceListening('tagger', api.url);
  // The runtime owns the end: SIGTERM (or SIGINT, unsupervised) drains, closes the pool, and exits.
  await new Promise<never>(() => {});
  return 0;
}

export const taggerCommand: Command = { name: 'tagger', help, run };
