/**
 * `nodescale bench <url>`: load-test one URL, closed or open model.
 */
import { readFileSync } from 'node:fs';
import { hardOpenFiles } from '../deploy/doctor.ts';
import { BENCH_DEFAULTS, type BenchOptions } from '../loadtest/options.ts';
import { formatBenchResult } from '../loadtest/report/text.ts';
import { runBench } from '../loadtest/run.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  defined,
  durationFlag,
  intFlag,
  numberFlag,
  parseCommandLine,
  requirePositional,
  type OptionSpecs,
} from './args.ts';
import type { Command, Io } from './io.ts';
import { formatDuration } from '../units.ts';
import {
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  connectionOptions,
  REQUEST_FLAGS,
  REQUEST_HELP,
  requestOptions,
} from './load-flags.ts';
import { ProgressBar, rateDetail } from './progress.ts';

const FLAGS = {
  ...CONNECTION_FLAGS,
  ...REQUEST_FLAGS,
  ...COMMON_FLAGS,
  duration: { type: 'string', short: 'd' },
  amount: { type: 'string', short: 'n' },
  rate: { type: 'string', short: 'R' },
} as const satisfies OptionSpecs;

export const help = `Usage: nodescale bench <url> [options]

Load-test an http: URL and report throughput, latency percentiles (HdrHistogram, µs resolution), status codes and
errors by kind.

Run length:
  -d, --duration DUR      measure for DUR (default ${formatDuration(BENCH_DEFAULTS.durationMs)})
  -n, --amount N          measure until N requests completed, instead of a duration
  -R, --rate R            open model: send R requests/s, evenly spaced, and measure latency from each request's
                          intended send time (coordinated-omission correct); without it, the closed model

${CONNECTION_HELP}

${REQUEST_HELP}

Output:
      --json              print the result as one JSON object on stdout
      --debug             print stack traces of errors
  -h, --help              this help

Examples:
  nodescale bench http://127.0.0.1:3000/ -c 64 -d 10s
  nodescale bench http://127.0.0.1:3000/ -c 64 -R 20000 -d 30s --json
  nodescale bench http://127.0.0.1:3000/api -m POST -H "content-type: application/json" -b '{"a":1}'`;

/** Parses bench's command line into BenchOptions (exported for tests). */
export function parseBenchArgs(argv: string[]): { options: BenchOptions; json: boolean } {
  const { values, positionals } = parseCommandLine('bench', argv, FLAGS, 1);
  const options: BenchOptions = {
    url: requirePositional('bench', positionals, 'the target URL'),
    ...connectionOptions(values),
    ...requestOptions(values),
    ...defined({
      durationMs: durationFlag(values, 'duration'),
      amount: intFlag(values, 'amount'),
      rate: numberFlag(values, 'rate', true),
    }),
  };
  return { options, json: boolFlag(values, 'json') };
}

async function run(argv: string[], io: Io): Promise<number> {
  const { options, json } = parseBenchArgs(argv);
  const connections = options.connections ?? BENCH_DEFAULTS.connections;
  const limit = openFileLimit();
  // Node raised its soft limit to the hard one at start: past that, the connections beyond it fail with EMFILE.
  if (limit !== null && connections + 64 > limit)
    io.stderr.write(
      `bench: warning: -c ${connections} is more than this process may open (open files: ${limit}): the connections past it fail with EMFILE. Raise the limit (ulimit -Hn, LimitNOFILE=; nodescale doctor -c ${connections} says how)\n`,
    );
  const bar = new ProgressBar(io.stderr, io.interactive);
  const result = await runBench(options, {
    signal: io.signal,
    onProgress: (progress) => {
      if (progress.phase === 'warmup') return bar.update('warming up', 0, '');
      const fraction =
        options.amount !== undefined
          ? progress.completed / options.amount
          : progress.elapsedMs / (options.durationMs ?? BENCH_DEFAULTS.durationMs);
      bar.update('measuring ', fraction, rateDetail(progress.completed, progress.elapsedMs));
    },
  }).finally(() => bar.clear());
  io.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : `${formatBenchResult(result)}\n`);
  return 0;
}

/** This process's hard open-file limit (/proc/self/limits), or null where it cannot be read. */
function openFileLimit(): number | null {
  try {
    return hardOpenFiles(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

export const benchCommand: Command = { name: 'bench', help, run };
