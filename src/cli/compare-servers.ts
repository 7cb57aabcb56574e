/**
 * `nodescale compare-servers`: the talk's baseline table, reproduced on today's runtime.
 */
import { compareCsv, compareHtml, compareSvg, formatCompareTable } from '../compare/report.ts';
import { COMPARE_DEFAULTS, compareServers, type CompareOptions } from '../compare/servers.ts';
import { NodescaleError } from '../errors.ts';
import { HELLO_KINDS, isHelloKind } from '../hello/index.ts';
import { prepareOutDir, writeOutFiles } from '../loadtest/report/files.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  defined,
  durationFlag,
  intFlag,
  parseCommandLine,
  textFlag,
  type OptionSpecs,
} from './args.ts';
import type { Command, Io } from './io.ts';
import { CONNECTION_FLAGS, connectionOptions } from './load-flags.ts';
import { ProgressBar, rateDetail } from './progress.ts';

const FLAGS = {
  ...CONNECTION_FLAGS,
  ...COMMON_FLAGS,
  duration: { type: 'string', short: 'd' },
  rounds: { type: 'string', short: 'r' },
  servers: { type: 'string', short: 's' },
  out: { type: 'string', short: 'o' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const satisfies OptionSpecs;

export const help = `Usage: nodescale compare-servers [options]

Start the four hello servers (${HELLO_KINDS.join(', ')}), each in its own process, benchmark them side by side in
alternating rounds with the same settings, and print the talk's table: throughput and latency, with ratios to plain
TCP. Figures are medians over the rounds.

Options:
  -s, --servers LIST      which servers, comma-separated (default ${HELLO_KINDS.join(',')})
  -r, --rounds N          alternating rounds (default ${COMPARE_DEFAULTS.rounds})
  -d, --duration DUR      measured time per server per round (default ${COMPARE_DEFAULTS.durationMs / 1000}s)
  -c, --connections N     (default ${COMPARE_DEFAULTS.connections})
  -p, --pipelining N      (default 1)
  -w, --workers N         generator threads (default 1)
      --warmup DUR        warm-up before each run (default ${COMPARE_DEFAULTS.warmupMs / 1000}s)
      --tls-cert FILE     serve and load every server over https:, with this certificate (PEM) and --tls-key FILE
  -o, --out DIR           write results.json, results.csv, report.html and throughput.svg into DIR
      --json              print the result as JSON on stdout
  -h, --help              this help

Example:
  nodescale compare-servers -c 64 -d 5s --out compare-out`;

export function parseCompareArgs(argv: string[]): { options: CompareOptions; out: string | null; json: boolean } {
  const { values } = parseCommandLine('compare-servers', argv, FLAGS, 0);
  const rounds = intFlag(values, 'rounds');
  if (rounds === 0) throw new NodescaleError('NS_ERR_INVALID_OPTION', '--rounds must be a whole number ≥ 1, got 0');
  const options: CompareOptions = {
    ...connectionOptions(values),
    ...defined({ durationMs: durationFlag(values, 'duration'), rounds }),
  };
  const certFile = textFlag(values, 'tls-cert');
  const keyFile = textFlag(values, 'tls-key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new NodescaleError('NS_ERR_USAGE', 'compare-servers: --tls-cert and --tls-key go together');
  if (certFile !== undefined && keyFile !== undefined) options.tls = { certFile, keyFile };
  const servers = textFlag(values, 'servers');
  if (servers !== undefined) {
    const list = servers.split(',').map((s) => s.trim());
    const unknown = list.find((s) => !isHelloKind(s));
    if (unknown !== undefined)
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `--servers: unknown server "${unknown}"; expected ${HELLO_KINDS.join(', ')}`,
      );
    options.servers = list.filter(isHelloKind);
  }
  return { options, out: textFlag(values, 'out') ?? null, json: boolFlag(values, 'json') };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseCompareArgs(argv);
  if (args.out !== null) prepareOutDir(args.out);
  const bar = new ProgressBar(io.stderr, io.interactive);
  let label = '';
  let done = 0;
  let total = 1;
  const duration = args.options.durationMs ?? COMPARE_DEFAULTS.durationMs;
  if (!args.json && !io.interactive)
    io.stderr.write('compare-servers: starting the servers and benchmarking them in rounds…\n');
  const result = await compareServers(args.options, {
    signal: io.signal,
    onRunStart: (round, server, index, count) => {
      label = `round ${round + 1} ${server.padEnd(7)}`;
      done = index;
      total = count;
    },
    onProgress: (progress) =>
      bar.update(
        label,
        (done + progress.elapsedMs / duration) / total,
        rateDetail(progress.completed, progress.elapsedMs),
      ),
  }).finally(() => bar.clear());
  if (args.out !== null) {
    writeOutFiles(args.out, {
      'results.json': `${JSON.stringify(result, null, 2)}\n`,
      'results.csv': compareCsv(result),
      'report.html': compareHtml(result),
      'throughput.svg': compareSvg(result),
    });
  }
  if (args.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    io.stdout.write(
      `Hello World${result.tls ? ' over https' : ''}, ${result.connections} connections, ${(result.durationMs / 1000).toFixed(1)}s per run, ${result.rounds} rounds (medians)\n\n${formatCompareTable(result)}\n`,
    );
    if (args.out !== null)
      io.stdout.write(`\nWrote ${args.out}/results.json, results.csv, report.html, throughput.svg\n`);
  }
  return 0;
}

export const compareServersCommand: Command = { name: 'compare-servers', help, run };
