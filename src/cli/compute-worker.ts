/**
 * `nodescale compute-worker <tasks-module | tagger> --broker URL`: a compute service (src/compute/amqp-service.ts)
 * on nodescale/runtime — ready once it consumes, graceful on SIGTERM (no new tasks; what it holds is finished and
 * acknowledged), metrics of its tasks beside the runtime's. Runs under `nodescale run` like any app.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AMQP_DEFAULTS } from '../compute/amqp-wire.ts';
import { NodescaleError } from '../errors.ts';
import { announceListening } from '../ipc.ts';
import { listen, origin } from '../listen.ts';
import { createRuntime } from '../protect/protect.ts';
import { jsonLogger } from '../runtime/options.ts';
import { TAGGER_TASKS } from '../tagger/tagger.ts';
import {
  COMMON_FLAGS,
  hostPortFlag,
  intFlag,
  parseCommandLine,
  requirePositional,
  secretUrlFlag,
  textFlag,
  tlsFlags,
} from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  transport: { type: 'string' },
  broker: { type: 'string' },
  'broker-file': { type: 'string' },
  'broker-ca': { type: 'string' },
  'broker-cert': { type: 'string' },
  'broker-key': { type: 'string' },
  queue: { type: 'string' },
  'queue-type': { type: 'string' },
  prefetch: { type: 'string' },
  threads: { type: 'string' },
  'max-deliveries': { type: 'string' },
  metrics: { type: 'string' },
  ...COMMON_FLAGS,
} as const;

const A = AMQP_DEFAULTS;

export const help = `Usage: nodescale compute-worker <tasks-module | tagger> --broker URL [options]

A compute service: takes tasks from a RabbitMQ queue and runs them on its own worker threads, so that the API's
event loop never does CPU-bound work and each tier scales on its own (createCompute({ transport: 'amqp' }) is the
caller's side). <tasks-module> exports \`tasks\`, a record of functions; "tagger" runs the tagger's extraction.
At-least-once: a task is acknowledged after its reply; a service killed mid-task loses nothing (docs/compute.md).

Options:
      --transport T         whose service this is (default amqp, the transport whose tasks run in services)
      --broker URL          the broker: amqp://user:pass@host:5672/vhost (required: the flag, or
                            --broker-file FILE, or NODESCALE_BROKER_URL; a password on the command line is
                            readable by every local user); a cluster: its nodes' URLs separated by commas
      --broker-ca FILE      with amqps://: the CA that signed the broker's certificate (PEM)
      --broker-cert FILE, --broker-key FILE
                            with amqps://: a client certificate and its key (PEM), for a broker that asks for one
      --queue NAME          the task queue (default ${A.queue})
      --queue-type T        quorum (default: replicated, counts deliveries) or classic (faster, one node)
      --prefetch N          tasks held at once, 1 to 65535 (default ${A.prefetchPerThread} per thread: a frozen service
                            keeps no more; raise it for tasks of microseconds)
      --threads N           worker threads (default: usable CPUs - 1, at least 1)
      --max-deliveries N    deliveries of one task before it is parked as poison (default ${A.maxDeliveries})
      --metrics [HOST:]PORT /metrics, /healthz, /readyz on this port (host 127.0.0.1 unless given)
  -h, --help                this help

SIGTERM (or Ctrl-C) stops it gracefully.

Example:
  nodescale compute-worker tagger --broker amqp://guest:guest@127.0.0.1:5672 --metrics 9200`;

/** The tasks module: "tagger", or a file that exists (a path, or a file: URL). */
function tasksModule(raw: string): string {
  if (raw === 'tagger') return TAGGER_TASKS.href;
  const file = raw.startsWith('file:') ? fileURLToPath(raw) : path.resolve(raw);
  if (!existsSync(file))
    throw new NodescaleError('NS_ERR_INVALID_OPTION', `compute-worker: no tasks module at ${file}`);
  return pathToFileURL(file).href;
}

export function parseComputeWorkerArgs(argv: string[]) {
  const { values, positionals } = parseCommandLine('compute-worker', argv, FLAGS, 1);
  const tasks = tasksModule(requirePositional('compute-worker', positionals, 'the tasks module (or "tagger")'));
  const broker = secretUrlFlag(values, 'broker');
  if (broker === undefined)
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'compute-worker: give the broker: --broker amqp://…, --broker-file FILE or NODESCALE_BROKER_URL',
    );
  const queueType = textFlag(values, 'queue-type');
  return {
    transport: textFlag(values, 'transport') ?? 'amqp',
    tasks,
    url: broker,
    tls: tlsFlags(values, 'broker', broker),
    queue: textFlag(values, 'queue'),
    queueType: queueType as 'quorum' | 'classic' | undefined,
    prefetch: intFlag(values, 'prefetch'),
    threads: intFlag(values, 'threads'),
    maxDeliveries: intFlag(values, 'max-deliveries'),
    metrics: hostPortFlag(values, 'metrics'),
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const { metrics, transport, ...args } = parseComputeWorkerArgs(argv);
  const { startComputeService } = await import('../compute/service.ts');
  const logger = jsonLogger;
  // Options are checked (and the broker reached) before anything else starts.
  let runtime: ReturnType<typeof createRuntime> | null = null;
  const service = await startComputeService(transport, {
    ...Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)),
    tasks: args.tasks,
    log: logger,
    // While the broker is away, /readyz says so ('unavailable').
    onConsuming: (consuming) => runtime?.setUnavailable(!consuming),
  });
  runtime = createRuntime({ readyWhen: 'manual', registries: [service.registry], logger });
  // The runtime's graceful shutdown (SIGTERM) ends with the service's: what it holds is answered first.
  runtime.onShutdown(() => service.stop());
  if (metrics !== null) {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    runtime.attach(server);
    let address;
    try {
      address = await listen(server, metrics.port, metrics.host, 'the compute worker metrics');
    } catch (error) {
      // A service without the metrics it was asked for does not run on: it stops, and the error is the exit.
      await service.stop();
      throw error;
    }
    announceListening('metrics', `${origin(address)}/metrics`);
    io.stderr.write(`compute-worker: metrics on ${origin(address)}/metrics\n`);
  } else runtime.start();
  runtime.setReady();
  // Where it serves, for whoever started it (`demo --scale-out` waits for every compute service): broker#queue.
  announceListening('compute-worker', service.address);
  io.stderr.write(`compute-worker: consuming ${service.address}\n`);
  await new Promise<never>(() => {});
  return 0;
}

export const computeWorkerCommand: Command = { name: 'compute-worker', help, run };
