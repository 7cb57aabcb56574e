/**
 * `nodescale merge a.json b.json …`: the results of several generator machines as one.
 */
import { readFileSync, statSync } from 'node:fs';
import { NodescaleError } from '../errors.ts';
import { mergeResults } from '../loadtest/merge.ts';
import { formatBenchResult, formatThresholds } from '../loadtest/report/text.ts';
import { evaluateThresholds } from '../loadtest/thresholds.ts';
import { boolFlag, COMMON_FLAGS, parseCommandLine, type OptionSpecs } from './args.ts';
import { reportFailedThresholds } from './bench.ts';
import type { Command, Io } from './io.ts';
import { ASSERT_FLAGS, ASSERT_HELP, assertFlags } from './load-flags.ts';

const FLAGS = { ...ASSERT_FLAGS, ...COMMON_FLAGS } as const satisfies OptionSpecs;

/** A result file is a few KiB to a few MiB (per-name histograms): past this it is not one. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export const help = `Usage: nodescale merge <result.json> [<result.json> …] [options]

Merge the results of \`nodescale bench … --json\` taken at the same time on several generator machines against one
target into one result: counts and status codes added, latency percentiles read from the merged histograms (exact,
never an average of percentiles), throughput the sum of each run's own rate; the time the runs overlapped is
reported beside it.

${ASSERT_HELP}

Output:
      --json              print the merged result as JSON (it merges again, like any result)
  -h, --help              this help

Example:
  ssh gen1 nodescale bench https://api.example.com/ -c 256 -d 60s --json > gen1.json &
  ssh gen2 nodescale bench https://api.example.com/ -c 256 -d 60s --json > gen2.json; wait
  nodescale merge gen1.json gen2.json --assert 'p99<100ms'`;

function readResult(file: string): unknown {
  let text: string;
  try {
    if (statSync(file).size > MAX_FILE_BYTES)
      throw new NodescaleError('NS_ERR_MERGE', `${file} is larger than any bench result (${MAX_FILE_BYTES} bytes)`);
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof NodescaleError) throw error;
    throw new NodescaleError(
      'NS_ERR_MERGE',
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new NodescaleError('NS_ERR_MERGE', `${file} is not JSON: ${(error as Error).message}`);
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine('merge', argv, FLAGS, Infinity);
  if (positionals.length === 0) throw new NodescaleError('NS_ERR_USAGE', 'merge: give the result files to merge');
  const thresholds = assertFlags(values);
  const merged = mergeResults(positionals.map(readResult), positionals);
  const outcomes = evaluateThresholds(merged, thresholds);
  if (boolFlag(values, 'json'))
    io.stdout.write(
      `${JSON.stringify(thresholds.length > 0 ? { ...merged, thresholds: outcomes } : merged, null, 2)}\n`,
    );
  else {
    const { runs, overlapMs, windowMs } = merged.merged;
    const overlap =
      overlapMs === 0
        ? 'they never all ran at once: the throughput is what they would sum to together'
        : `all ran together for ${(overlapMs / 1000).toFixed(1)} s of ${(windowMs / 1000).toFixed(1)} s`;
    io.stdout.write(`Merged ${runs} runs (${overlap})\n${formatBenchResult(merged)}\n`);
    if (outcomes.length > 0) io.stdout.write(`${formatThresholds(outcomes)}\n`);
  }
  return reportFailedThresholds(io, outcomes);
}

export const mergeCommand: Command = { name: 'merge', help, run };
