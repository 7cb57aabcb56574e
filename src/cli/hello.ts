/**
 * `nodescale hello <tcp|http|fastify|express>`: the talk's baseline servers.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { NodescaleError } from '../errors.ts';
import { announceListening } from '../ipc.ts';
import { HELLO_KINDS, isHelloKind, startHello, type HelloKind } from '../hello/index.ts';
import { boolFlag, COMMON_FLAGS, portFlag, parseCommandLine, requirePositional, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  protect: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  ...COMMON_FLAGS,
} as const;

export const help = `Usage: nodescale hello <${HELLO_KINDS.join('|')}> [--port N] [--host H] [--protect] [--tls-cert F --tls-key F]

Start one of the talk's baseline servers. Each answers "Hello World!" to any request, over HTTP/1.1 with keep-alive:
  tcp       a raw node:net server that parses just enough HTTP (pipelining, Content-Length and chunked bodies)
  http      a plain node:http server
  fastify   fastify 5 with its defaults
  express   express 5 with its defaults

It prints the URL it listens on, then serves until Ctrl-C or SIGTERM.

Options:
      --port N     port to listen on (default 3000; 0 picks a free one)
      --host H     address to listen on (default 127.0.0.1)
      --protect    put nodescale/runtime in front, with its defaults (http, fastify, express): /metrics, /healthz,
                   /readyz, request timing, load shedding; to measure what it costs
      --tls-cert F serve https: with the certificate (chain) in F, PEM, and the key in --tls-key F
  -h, --help       this help

Examples:
  nodescale hello tcp --port 3000 & nodescale bench http://127.0.0.1:3000/ -c 64
  nodescale hello http --port 3001 --protect & curl -s http://127.0.0.1:3001/metrics
  nodescale hello http --port 8443 --tls-cert server.pem --tls-key server.key &
    nodescale bench https://127.0.0.1:8443/ --ca ca.pem -c 64`;

export interface HelloArgs {
  kind: HelloKind;
  port: number;
  host: string;
  protect: boolean;
  tls: { cert: Buffer; key: Buffer } | null;
}

function readPemFlag(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `hello: ${flag}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

export function parseHelloArgs(argv: string[]): HelloArgs {
  const { values, positionals } = parseCommandLine('hello', argv, FLAGS, 1);
  const kind = requirePositional('hello', positionals, `the server kind (${HELLO_KINDS.join(', ')})`);
  if (!isHelloKind(kind))
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `hello: unknown server kind "${kind}"; expected one of ${HELLO_KINDS.join(', ')}`,
    );
  const port = portFlag(values, 'port', 3000);
  const protect = boolFlag(values, 'protect');
  if (protect && kind === 'tcp')
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'hello: --protect needs an HTTP server (http, fastify or express), not tcp',
    );
  const cert = textFlag(values, 'tls-cert');
  const key = textFlag(values, 'tls-key');
  if ((cert === undefined) !== (key === undefined))
    throw new NodescaleError('NS_ERR_USAGE', 'hello: --tls-cert and --tls-key go together');
  const tls =
    cert === undefined || key === undefined
      ? null
      : { cert: readPemFlag('--tls-cert', cert), key: readPemFlag('--tls-key', key) };
  return { kind, port, host: textFlag(values, 'host') ?? '127.0.0.1', protect, tls };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseHelloArgs(argv);
  const hello = await startHello(args.kind, {
    port: args.port,
    host: args.host,
    ...(args.tls === null ? {} : { tls: args.tls }),
  });
  // Graceful shutdown stays this command's: Ctrl-C and SIGTERM close the server below.
  const runtime = args.protect
    ? (await import('../protect/protect.ts')).protect(hello.server as Server, { shutdown: false })
    : null;
  io.stdout.write(`${hello.kind} hello server${runtime ? ' (protected)' : ''} listening on ${hello.url}\n`);
  announceListening('hello', hello.url);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    io.signal.addEventListener('abort', stop, { once: true });
    process.once('SIGTERM', stop);
  });
  runtime?.close();
  await hello.close();
  return 0;
}

export const helloCommand: Command = { name: 'hello', help, run };
