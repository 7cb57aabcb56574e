/**
 * The `nodescale` command: dispatch, help, version, and the one place errors become messages and exit codes.
 */
import { readFileSync } from 'node:fs';
import { ERROR_CODES, isNodescaleError, NodescaleError } from '../errors.ts';
import { processIo, type Command, type Io } from './io.ts';

/** The commands, each loaded only when it runs: `bench` does not pay for loading fastify and express. */
export const CLI_COMMANDS: readonly { name: string; summary: string; load: () => Promise<Command> }[] = [
  {
    name: 'bench',
    summary: 'load-test a URL like wrk, with correct latency',
    load: async () => (await import('./bench.ts')).benchCommand,
  },
  {
    name: 'sweep',
    summary: 'find the knee of throughput vs concurrency',
    load: async () => (await import('./sweep.ts')).sweepCommand,
  },
  {
    name: 'compare-servers',
    summary: 'plain TCP vs http vs fastify vs express, side by side',
    load: async () => (await import('./compare-servers.ts')).compareServersCommand,
  },
  {
    name: 'merge',
    summary: 'merge bench results of several generator machines, exactly',
    load: async () => (await import('./merge.ts')).mergeCommand,
  },
  {
    name: 'lab',
    summary: 'a fleet of hosts in network namespaces, to break on purpose (root)',
    load: async () => (await import('./lab.ts')).labCommand,
  },
  {
    name: 'dashboard',
    summary: 'the live dashboard of supervised apps that run already',
    load: async () => (await import('./dashboard.ts')).dashboardCommand,
  },
  {
    name: 'top',
    summary: 'the workers of a supervised app, live in the terminal',
    load: async () => (await import('./top.ts')).topCommand,
  },
  {
    name: 'grafana',
    summary: 'a Grafana dashboard, or Prometheus alert rules, for nodescale’s metrics',
    load: async () => (await import('./grafana.ts')).grafanaCommand,
  },
  {
    name: 'hello',
    summary: "start one of the talk's baseline servers",
    load: async () => (await import('./hello.ts')).helloCommand,
  },
  {
    name: 'console',
    summary: 'the secure admin console of a live process',
    load: async () => (await import('./console.ts')).consoleCommand,
  },
  {
    name: 'run',
    summary: 'supervise an app: workers, restarts with backoff, zero-downtime reload',
    load: async () => (await import('./supervise.ts')).runCommand,
  },
  {
    name: 'status',
    summary: "the supervised workers' state (of nodescale run)",
    load: async () => (await import('./supervise.ts')).statusCommand,
  },
  {
    name: 'reload',
    summary: 'rolling reload of nodescale run; exits 1 if rolled back',
    load: async () => (await import('./supervise.ts')).reloadCommand,
  },
  {
    name: 'scale',
    summary: 'change the number of workers of nodescale run',
    load: async () => (await import('./supervise.ts')).scaleCommand,
  },
  {
    name: 'stop',
    summary: 'graceful stop of nodescale run',
    load: async () => (await import('./supervise.ts')).stopCommand,
  },
  {
    name: 'compute-worker',
    summary: 'a compute service: runs tasks from a RabbitMQ queue on worker threads',
    load: async () => (await import('./compute-worker.ts')).computeWorkerCommand,
  },
  {
    name: 'demo',
    summary: "the talk's tagging API, supervised and instrumented, with its corpus",
    load: async () => (await import('./demo.ts')).demoCommand,
  },
  {
    name: 'tagger',
    summary: 'the tagging API alone (GraphQL, compute pool or inline)',
    load: async () => (await import('./tagger.ts')).taggerCommand,
  },
  {
    name: 'start',
    summary: "an app's supervisor in the background, back once its workers are ready",
    load: async () => (await import('./start.ts')).startCommand,
  },
  {
    name: 'restart',
    summary: 'an app started with start, stopped and started again',
    load: async () => (await import('./start.ts')).restartCommand,
  },
  {
    name: 'ls',
    summary: 'every app of this user: workers, restarts, CPU, memory, port, logs',
    load: async () => (await import('./ls.ts')).lsCommand,
  },
  {
    name: 'logs',
    summary: "an app's log: the last lines, a worker's, since when, or followed",
    load: async () => (await import('./logs.ts')).logsCommand,
  },
  {
    name: 'startup',
    summary: 'the apps started at boot by systemd: a unit each, written and enabled',
    load: async () => (await import('./startup.ts')).startupCommand,
  },
  {
    name: 'import-pm2',
    summary: "pm2's ecosystem file as nodescale.config.json, and what it could not carry over",
    load: async () => (await import('./import-pm2.ts')).importPm2Command,
  },
  {
    name: 'deploy',
    summary: 'nginx or haproxy in front: a configuration generated and checked',
    load: async () => (await import('./deploy.ts')).deployCommand,
  },
  {
    name: 'doctor',
    summary: "this machine and the balancer's timeout chain, checked for many connections",
    load: async () => (await import('./doctor.ts')).doctorCommand,
  },
  {
    name: 'corpus',
    summary: 'serve the article corpus on loopback',
    load: async () => (await import('./corpus.ts')).corpusCommand,
  },
];

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function mainHelp(): string {
  const width = Math.max(...CLI_COMMANDS.map((command) => command.name.length));
  return `nodescale ${version()}: take a Node.js API from "it works" to "it runs at scale and stays healthy".

Usage: nodescale <command> [options]

Commands:
${CLI_COMMANDS.map((command) => `  ${command.name.padEnd(width)}   ${command.summary}`).join('\n')}

Options:
  -h, --help      this help; nodescale <command> --help for a command's
  -v, --version   print the version

Exit codes: 0 success, 1 failure, 2 usage error.`;
}

/** `-h` or `--help` among a command's own arguments: those before `--` (what follows belongs to the app it runs). */
function asksForHelp(args: string[]): boolean {
  const dash = args.indexOf('--');
  return (dash === -1 ? args : args.slice(0, dash)).some((arg) => arg === '--help' || arg === '-h');
}

/** Runs the CLI with `argv` (without node and script). Resolves to the exit code; never throws. */
export async function main(argv: string[], io?: Io): Promise<number> {
  const controller = new AbortController();
  const ownIo = io === undefined;
  const streams = io ?? processIo(controller.signal);
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  if (ownIo) process.on('SIGINT', onSigint);
  const debug = argv.includes('--debug');
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      streams.stdout.write(`${mainHelp()}\n`);
      return name === undefined ? EXIT.usage : EXIT.ok;
    }
    if (name === '--version' || name === '-v') {
      streams.stdout.write(`${version()}\n`);
      return EXIT.ok;
    }
    const entry = CLI_COMMANDS.find((candidate) => candidate.name === name);
    if (entry === undefined) {
      throw new NodescaleError(
        'NS_ERR_UNKNOWN_COMMAND',
        `unknown command "${name}"; the commands are ${CLI_COMMANDS.map((c) => c.name).join(', ')}`,
      );
    }
    const command = await entry.load();
    if (asksForHelp(rest)) {
      streams.stdout.write(`${command.help}\n`);
      return EXIT.ok;
    }
    return await command.run(rest, streams);
  } catch (error) {
    const known = isNodescaleError(error)
      ? error
      : new NodescaleError('NS_ERR_INTERNAL', (error as Error)?.message ?? String(error), { cause: error });
    streams.stderr.write(`error ${known.code}: ${known.message}\n`);
    if (debug)
      streams.stderr.write(`${((known.code === 'NS_ERR_INTERNAL' ? known.cause : known) as Error)?.stack ?? ''}\n`);
    return ERROR_CODES[known.code].kind === 'usage' ? EXIT.usage : EXIT.failure;
  } finally {
    if (ownIo) process.off('SIGINT', onSigint);
  }
}
