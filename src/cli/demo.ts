/**
 * `nodescale demo` (what `npm start` runs): the corpus on loopback and the tagging API supervised by nodescale run,
 * with every worker's metrics on one endpoint and each worker's admin console on a private socket. It prints where
 * everything is and what to try next; Ctrl-C stops it all cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCorpusServer } from '../corpus/server.ts';
import { brokerUrls } from '../compute/amqp-wire.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { checkStore } from '../tagger/store.ts';
import { announceListening, listenForAnnouncements, type ListeningAnnouncement } from '../ipc.ts';
import { eachLine } from '../lines.ts';
import { listen } from '../listen.ts';
import { boolFlag, COMMON_FLAGS, defined, portFlag, intFlag, parseCommandLine, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';
import { runScaleOut } from './scale-out.ts';

const BIN = fileURLToPath(new URL('../../bin/nodescale.js', import.meta.url));

const DEMO_COMPUTE = ['pool', 'inline'];

const FLAGS = {
  port: { type: 'string' },
  'corpus-port': { type: 'string' },
  'metrics-port': { type: 'string' },
  'dashboard-port': { type: 'string' },
  workers: { type: 'string', short: 'w' },
  compute: { type: 'string' },
  name: { type: 'string' },
  'scale-out': { type: 'boolean' },
  'compute-workers': { type: 'string' },
  'compute-metrics-port': { type: 'string' },
  broker: { type: 'string' },
  store: { type: 'string' },
  ...COMMON_FLAGS,
} as const;

export const help = `Usage: nodescale demo [options]

The talk's tagging API, end to end on this machine: the article corpus on loopback, and the GraphQL tagging API
supervised by nodescale run (restarts, zero-downtime reload), with all workers' metrics on one Prometheus endpoint
and each worker's admin console. Prints the URLs and the commands to try next. Ctrl-C stops everything.

Options:
      --port N          the API's port (default 3000)
      --corpus-port N   the corpus's port (default 8080)
      --metrics-port N  the supervisor's /metrics port (default 9100)
      --dashboard-port N  the live dashboard's port, on 127.0.0.1 (default 9300; docs/dashboard.md)
  -w, --workers N       API workers (default 1: with the compute pool, the other cores extract tags;
                        2 with --scale-out)
      --compute T       pool (default) or inline: extraction off or on the API's event loop
      --name NAME       the supervisor's name, for nodescale status/reload/console (default demo)
  -h, --help            this help

The talk's final picture, split across processes (docs/demo.md):
      --scale-out               the API tier (tagger workers, --compute amqp --store redis) and the compute tier
                                (nodescale compute-worker tagger), each under its own nodescale run, with a private
                                redis-server and rabbitmq-server (apt-get install redis-server rabbitmq-server)
      --compute-workers N       compute services (default 1; each uses every core but one)
      --compute-metrics-port N  the compute tier's /metrics port (default 9101)
      --broker URL              use this RabbitMQ instead of starting one (amqp://user:pass@host:5672)
      --store URL               use this Redis instead of starting one (redis://host:6379)`;

export function parseDemoArgs(argv: string[]) {
  const { values } = parseCommandLine('demo', argv, FLAGS, 0);
  const scaleOut = boolFlag(values, 'scale-out');
  for (const flag of ['compute-workers', 'compute-metrics-port', 'broker', 'store'] as const)
    if (!scaleOut && values[flag] !== undefined)
      throw new NodescaleError('NS_ERR_USAGE', `demo: --${flag} goes with --scale-out`);
  if (scaleOut && values.compute !== undefined)
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'demo: --scale-out extracts on compute services (amqp); leave out --compute',
    );
  const compute = textFlag(values, 'compute') ?? 'pool';
  // The broker transport runs in `demo --scale-out` (its broker and compute services started with it).
  if (!DEMO_COMPUTE.includes(compute)) throw invalidOption('--compute', DEMO_COMPUTE.join(' or '), compute);
  const workers = intFlag(values, 'workers') ?? (scaleOut ? 2 : 1);
  if (workers < 1) throw invalidOption('--workers', 'a whole number ≥ 1', workers);
  const computeWorkers = intFlag(values, 'compute-workers') ?? 1;
  if (computeWorkers < 1) throw invalidOption('--compute-workers', 'a whole number ≥ 1', computeWorkers);
  const broker = textFlag(values, 'broker');
  const store = textFlag(values, 'store');
  if (broker !== undefined) brokerUrls('--broker', broker);
  if (store !== undefined && checkStore(store, '--store') === 'embedded')
    throw invalidOption('--store', 'a redis:// or rediss:// URL', store);
  const name = textFlag(values, 'name') ?? 'demo';
  if (!/^[\w.-]+$/.test(name)) throw invalidOption('--name', 'letters, digits, ".", "_" or "-"', name);
  return {
    port: portFlag(values, 'port', 3000),
    corpusPort: portFlag(values, 'corpus-port', 8080),
    metricsPort: portFlag(values, 'metrics-port', 9100),
    dashboardPort: portFlag(values, 'dashboard-port', 9300),
    workers,
    compute,
    name,
    scaleOut,
    computeWorkers,
    computeMetricsPort: portFlag(values, 'compute-metrics-port', 9101),
    ...defined({ broker, store }),
  };
}

function banner(
  api: string,
  corpus: string,
  metrics: string,
  dashboard: string,
  name: string,
  compute: string,
): string {
  const query = `curl -s ${api}/graphql -H 'content-type: application/json' -d '{"query":"{ tags(url: \\"${corpus}/articles/astronomy-1.html\\") }"}'`;
  return `
nodescale demo: the tagging API (compute ${compute}), supervised

  API        ${api}/graphql       (GraphQL: tags(url), urls(tag), health)
  benchmark  ${api}/benchmark/get-tags   ${api}/benchmark/get-urls
  corpus     ${corpus}/               (60 article pages)
  metrics    ${metrics}      (every worker, labelled by worker)
  dashboard  ${dashboard}           (every worker live: open it in a browser)

Try:
  ${query}
  curl -s '${api}/graphql?query=%7Burls(tag:%22telescope%22)%7D'
  npx nodescale bench ${api}/benchmark/get-tags -c 8 -d 10s
  npx nodescale sweep ${api}/benchmark/get-tags --from 1 --to 32 --out ${path.join(os.tmpdir(), `nodescale-${name}-sweep`)}
  npx nodescale status --name ${name}
  npx nodescale console --name ${name} --worker 0 watch
  npx nodescale console --name ${name} --worker 0 stalls     (what held the event loop past 500 ms, caught as it ran)
  npx nodescale reload --name ${name}        (answers once the new workers have lived 5 s)

Ctrl-C stops everything.
`;
}

async function assertPortFree(port: number): Promise<void> {
  const probe = net.createServer();
  await listen(probe, port, '127.0.0.1', 'the API');
  await new Promise((resolve) => probe.close(resolve));
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseDemoArgs(argv);
  // The API's port is checked first: a worker that cannot listen would otherwise crash-loop for a while.
  if (args.port !== 0) await assertPortFree(args.port);
  if (args.scaleOut) return runScaleOut(args, BIN, io);
  const corpus = await startCorpusServer({ port: args.corpusPort });
  let onAnnouncement: (announcement: ListeningAnnouncement) => void = () => {};
  const announcements = await listenForAnnouncements((announcement) => onAnnouncement(announcement));
  const supervisor: ChildProcess = spawn(
    process.execPath,
    // A short probation so that the banner's `reload` answers in seconds (a deployment keeps the default, 30 s).
    [
      ...[
        BIN,
        'run',
        BIN,
        '-w',
        String(args.workers),
        '--name',
        args.name,
        '--console',
        '--metrics',
        String(args.metricsPort),
        '--dashboard',
        `127.0.0.1:${args.dashboardPort}`,
        '--probation',
        '5s',
      ],
      ...[
        '--',
        'tagger',
        '--port',
        String(args.port),
        '--compute',
        args.compute,
        '--allow',
        '127.0.0.1',
        '--corpus-url',
        corpus.url,
        // What blocks the loop is caught while it runs (docs/debugging.md): `nodescale console … stalls`.
        '--stall-capture',
        '500ms',
      ],
    ],
    // The supervisor announces the API's and the metrics' addresses on a socket of ours (ipc.ts).
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...announcements.env } },
  );
  const exited = new Promise<number>((resolve) => supervisor.once('exit', (code) => resolve(code ?? 1)));
  let api: string | null = null;
  let metrics: string | null = null;
  let dashboard: string | null = null;
  let shown = false;
  const show = () => {
    if (shown || api === null || metrics === null || dashboard === null) return;
    shown = true;
    io.stdout.write(banner(api, corpus.url, metrics, dashboard, args.name, args.compute));
    // For a program that started the demo (the benches): where the API answers.
    announceListening('demo', api);
  };
  eachLine(supervisor.stdout!, (line) => io.stdout.write(`${line}\n`));
  eachLine(supervisor.stderr!, (line) => io.stderr.write(`${line}\n`));
  onAnnouncement = ({ service, url }) => {
    if (service === 'tagger') api ??= url;
    if (service === 'metrics') metrics ??= url;
    if (service === 'dashboard') dashboard ??= url;
    show();
  };
  // Ctrl-C reaches the supervisor too (one process group); a SIGTERM covers a stop from elsewhere.
  const stop = () => supervisor.exitCode === null && supervisor.kill('SIGTERM');
  io.signal.addEventListener('abort', stop, { once: true });
  process.once('SIGTERM', stop);
  const code = await exited;
  io.signal.removeEventListener('abort', stop);
  process.off('SIGTERM', stop);
  announcements.close();
  await corpus.close();
  io.stderr.write('nodescale demo: stopped\n');
  return io.signal.aborted ? 0 : code;
}

export const demoCommand: Command = { name: 'demo', help, run };
