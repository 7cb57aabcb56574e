/**
 * `nodescale bench <url>`: load-test one URL, closed or open model.
 */
import { readFileSync } from 'node:fs';
import { hardOpenFiles } from '../deploy/doctor.ts';
import { BENCH_DEFAULTS, type BenchOptions } from '../loadtest/options.ts';
import { NodescaleError } from '../errors.ts';
import { formatBenchResult, formatThresholds } from '../loadtest/report/text.ts';
import { runBench } from '../loadtest/run.ts';
import { evaluateThresholds, type Threshold } from '../loadtest/thresholds.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  defined,
  durationFlag,
  intFlag,
  numberFlag,
  parseCommandLine,
  type OptionSpecs,
} from './args.ts';
import type { Command, Io } from './io.ts';
import { formatDuration } from '../units.ts';
import {
  ASSERT_FLAGS,
  ASSERT_HELP,
  assertFlags,
  CONNECTION_FLAGS,
  CONNECTION_HELP,
  connectionOptions,
  REQUEST_FLAGS,
  REQUEST_HELP,
  requestOptions,
  targetUrl,
} from './load-flags.ts';
import { ProgressBar, rateDetail } from './progress.ts';

const FLAGS = {
  ...CONNECTION_FLAGS,
  ...REQUEST_FLAGS,
  ...ASSERT_FLAGS,
  ...COMMON_FLAGS,
  duration: { type: 'string', short: 'd' },
  amount: { type: 'string', short: 'n' },
  rate: { type: 'string', short: 'R' },
} as const satisfies OptionSpecs;

export const help = `Usage: nodescale bench <url> [options]
       nodescale bench --requests FILE [<url>] [options]

Load-test an http: or https: URL, or a list of requests, and report throughput, latency percentiles (HdrHistogram,
µs resolution), status codes and errors by kind. --json carries the histogram itself: \`nodescale merge\` adds the
results of several generator machines exactly.

Run length:
  -d, --duration DUR      measure for DUR (default ${formatDuration(BENCH_DEFAULTS.durationMs)})
  -n, --amount N          measure until N requests completed, instead of a duration
  -R, --rate R            open model: send R requests/s, evenly spaced, and measure latency from each request's
                          intended send time (coordinated-omission correct); without it, the closed model

${CONNECTION_HELP}

${REQUEST_HELP}

${ASSERT_HELP}

Output:
      --json              print the result as one JSON object on stdout
      --debug             print stack traces of errors
  -h, --help              this help

Examples:
  nodescale bench http://127.0.0.1:3000/ -c 64 -d 10s
  nodescale bench http://127.0.0.1:3000/ -c 64 -R 20000 -d 30s --json
  nodescale bench http://127.0.0.1:3000/api -m POST -H "content-type: application/json" -b '{"a":1}'
  nodescale bench https://127.0.0.1:8443/ --ca ca.pem -c 64 -d 10s --assert 'p99<20ms' --assert 'errors=0'
  nodescale bench http://127.0.0.1:4000/ --requests docs/examples/tags-requests.ndjson -c 32 -d 10s`;

/** Parses bench's command line into BenchOptions (exported for tests). */
export function parseBenchArgs(argv: string[]): { options: BenchOptions; json: boolean; thresholds: Threshold[] } {
  const { values, positionals } = parseCommandLine('bench', argv, FLAGS, 1);
  const thresholds = assertFlags(values);
  const request = requestOptions(values);
  const options: BenchOptions = {
    url: targetUrl('bench', positionals, request),
    ...connectionOptions(values),
    ...request,
    ...defined({
      durationMs: durationFlag(values, 'duration'),
      amount: intFlag(values, 'amount'),
      rate: numberFlag(values, 'rate', true),
    }),
  };
  return { options, json: boolFlag(values, 'json'), thresholds };
}

async function run(argv: string[], io: Io): Promise<number> {
  const { options, json, thresholds } = parseBenchArgs(argv);
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
  const outcomes = evaluateThresholds(result, thresholds);
  if (json)
    io.stdout.write(
      `${JSON.stringify(thresholds.length > 0 ? { ...result, thresholds: outcomes } : result, null, 2)}\n`,
    );
  else io.stdout.write(`${formatBenchResult(result)}\n${outcomes.length > 0 ? `${formatThresholds(outcomes)}\n` : ''}`);
  return reportFailedThresholds(io, outcomes);
}

/** One stderr line per failed threshold, with its code; exit 1 when any failed. */
export function reportFailedThresholds(io: Io, outcomes: ReturnType<typeof evaluateThresholds>): number {
  const failed = outcomes.filter((outcome) => !outcome.passed);
  for (const outcome of failed) {
    const error = new NodescaleError('NS_ERR_THRESHOLD_FAILED', `${outcome.threshold} failed: ${outcome.detail}`);
    io.stderr.write(`error ${error.code}: ${error.message}\n`);
  }
  return failed.length > 0 ? 1 : 0;
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
