/**
 * `nodescale corpus serve`: the generated article corpus on loopback (src/corpus/).
 */
import { NodescaleError } from '../errors.ts';
import { announceListening } from '../ipc.ts';
import { startCorpusServer } from '../corpus/server.ts';
import { corpus, corpusPaths } from '../corpus/generate.ts';
import { boolFlag, COMMON_FLAGS, portFlag, parseCommandLine, textFlag } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = { port: { type: 'string' }, host: { type: 'string' }, ...COMMON_FLAGS } as const;

export const help = `Usage: nodescale corpus serve [--port N] [--host H]
       nodescale corpus list [--json]

The corpus the tagging API is measured on: ${corpusPaths().length} article pages written for nodescale (generated from our
own templates and word lists, the same on every machine), served on loopback as the talk's web:8080 was, so load
tests never leave the machine. GET / lists them.

Options:
      --port N     port to listen on (default 8080; 0 picks a free one)
      --host H     address to listen on (default 127.0.0.1)
      --json       list: as JSON
  -h, --help       this help

Example:
  nodescale corpus serve --port 8080 & curl -s http://127.0.0.1:8080/articles/astronomy-1.html`;

export function parseCorpusArgs(argv: string[]) {
  const { values, positionals } = parseCommandLine('corpus', argv, FLAGS, 1);
  const action = positionals[0] ?? 'serve';
  if (action !== 'serve' && action !== 'list')
    throw new NodescaleError('NS_ERR_USAGE', `corpus: unknown action "${action}"; expected serve or list`);
  return {
    action,
    port: portFlag(values, 'port', 8080),
    host: textFlag(values, 'host') ?? '127.0.0.1',
    json: boolFlag(values, 'json'),
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseCorpusArgs(argv);
  if (args.action === 'list') {
    const pages = corpus().map(({ path, topic, title }) => ({ path, topic, title }));
    io.stdout.write(args.json ? `${JSON.stringify(pages)}\n` : pages.map((p) => `${p.path}  ${p.title}\n`).join(''));
    return 0;
  }
  const server = await startCorpusServer({ port: args.port, host: args.host });
  io.stdout.write(`corpus of ${corpusPaths().length} pages listening on ${server.url}/\n`);
  announceListening('corpus', server.url);
  await new Promise<void>((resolve) => {
    io.signal.addEventListener('abort', () => resolve(), { once: true });
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  return 0;
}

export const corpusCommand: Command = { name: 'corpus', help, run };
