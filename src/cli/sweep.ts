/**
 * `nodescale sweep <url>`: bench at increasing concurrency (or rate), find the knee, write the report.
 */
import { invalidOption, NodescaleError } from '../errors.ts';
import { BENCH_DEFAULTS } from '../loadtest/options.ts';
import { prepareOutDir, writeOutFiles } from '../loadtest/report/files.ts';
import { formatDuration } from '../units.ts';
import {
  formatKnee,
  formatSweepTable,
  sweepCharts,
  sweepCsv,
  sweepHtml,
  type ReportContext,
} from '../loadtest/report/sweep.ts';
import { redactUrl } from '../redact.ts';
import { version } from './main.ts';
import { geometricLevels, runSweep, SWEEP_DEFAULTS, type SweepOptions, type SweepResult } from '../loadtest/sweep.ts';
import {
  boolFlag,
  COMMON_FLAGS,
  defined,
  durationFlag,
  numberFlag,
  parseCommandLine,
  textFlag,
  type OptionSpecs,
} from './args.ts';
import type { Command, Io } from './io.ts';
import {
  ASSERT_FLAGS,
  ASSERT_HELP,
  assertFlags,
  CONNECTION_FLAGS,
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
  levels: { type: 'string', short: 'l' },
  from: { type: 'string' },
  to: { type: 'string' },
  factor: { type: 'string' },
  duration: { type: 'string', short: 'd' },
  'max-errors': { type: 'string' },
  'max-p99': { type: 'string' },
  'rate-sweep': { type: 'boolean' },
  out: { type: 'string', short: 'o' },
} as const satisfies OptionSpecs;

const S = SWEEP_DEFAULTS;

/** The connection flags as a sweep reads them: its levels are the connections, and its warm-up is per level. */
const SWEEP_CONNECTION_HELP = `Connections:
  -c, --connections N     with --rate-sweep: connections kept open (default ${SWEEP_DEFAULTS.rateConnections}); in a concurrency
                          sweep the levels are the connections
  -p, --pipelining N      requests in flight per connection (default ${BENCH_DEFAULTS.pipelining})
  -w, --workers N         generator threads, to use more than one core (default ${BENCH_DEFAULTS.workers})`;

export const help = `Usage: nodescale sweep <url> [options]

Run the target at increasing concurrency, one bench run per level, and find where it should be run: the knee of
throughput vs concurrency, by maximum power (throughput ÷ latency) and by a Universal Scalability Law fit.

Levels:
  -l, --levels 1,2,4,8    the levels, ascending
      --from N --to M --factor F
                          geometric levels instead (default ${S.from} to ${S.to}, factor ${S.factor})
      --rate-sweep        the levels are open-model rates (req/s) over --connections
  -d, --duration DUR      measured time per level (default ${formatDuration(S.durationMs)})
      --warmup DUR        warm-up per level (default ${formatDuration(S.warmupMs)})
      --max-errors R      stop after a level whose errors pass R: a ratio or a percentage (default ${S.maxErrorRatio * 100}%)
      --max-p99 DUR       stop after a level whose p99 passes DUR (default: no limit)

${SWEEP_CONNECTION_HELP}

${REQUEST_HELP}

${ASSERT_HELP}
  In a sweep, each level is judged: the sweep stops at the first level that fails, and the highest level that met
  every threshold is the answer (printed, and budget.highestPassing in results.json). Exits 1 only if none met it.

Output:
  -o, --out DIR           write results.json, results.csv, report.html and three SVG charts into DIR
      --json              print the result as JSON on stdout
  -h, --help              this help

Examples:
  nodescale sweep http://127.0.0.1:3000/ --from 1 --to 512 -d 5s --out sweep-out
  nodescale sweep http://127.0.0.1:3000/ --rate-sweep --levels 1000,2000,4000,8000 -c 64`;

function parseLevels(raw: string): number[] {
  const levels = raw.split(',').map((part) => Number(part.trim()));
  if (levels.some((level) => !Number.isFinite(level) || level <= 0))
    throw invalidOption('--levels', 'a comma-separated list of numbers > 0', raw);
  return levels;
}

function parseRatio(raw: string): number {
  const percent = raw.trim().endsWith('%');
  const value = Number(percent ? raw.trim().slice(0, -1) : raw);
  const ratio = percent ? value / 100 : value;
  if (raw.trim() === '' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1)
    throw invalidOption('--max-errors', 'a ratio from 0 to 1 or a percentage such as 5%', raw);
  return ratio;
}

export interface SweepArgs {
  options: SweepOptions;
  out: string | null;
  json: boolean;
}

export function parseSweepArgs(argv: string[]): SweepArgs {
  const { values, positionals } = parseCommandLine('sweep', argv, FLAGS, 1);
  const thresholds = assertFlags(values).map((threshold) => threshold.source);
  const request = requestOptions(values);
  const url = targetUrl('sweep', positionals, request);
  const mode = boolFlag(values, 'rate-sweep') ? 'rate' : 'concurrency';
  const levelsRaw = textFlag(values, 'levels');
  const from = numberFlag(values, 'from');
  const to = numberFlag(values, 'to');
  const factor = numberFlag(values, 'factor');
  if (levelsRaw !== undefined && (from !== undefined || to !== undefined || factor !== undefined)) {
    throw new NodescaleError('NS_ERR_USAGE', 'sweep: give --levels or --from/--to/--factor, not both');
  }
  const levels =
    levelsRaw !== undefined
      ? parseLevels(levelsRaw)
      : geometricLevels(from ?? SWEEP_DEFAULTS.from, to ?? SWEEP_DEFAULTS.to, factor ?? SWEEP_DEFAULTS.factor);
  const connection = connectionOptions(values);
  if (mode === 'concurrency' && connection.connections !== undefined) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      'sweep: --connections applies to --rate-sweep; in a concurrency sweep the levels are the connections',
    );
  }
  const maxErrors = textFlag(values, 'max-errors');
  const options: SweepOptions = {
    url,
    levels,
    mode,
    ...connection,
    ...request,
    ...defined({
      thresholds: thresholds.length > 0 ? thresholds : undefined,
      durationMs: durationFlag(values, 'duration'),
      maxErrorRatio: maxErrors === undefined ? undefined : parseRatio(maxErrors),
      maxP99Ms: durationFlag(values, 'max-p99'),
    }),
  };
  return { options, out: textFlag(values, 'out') ?? null, json: boolFlag(values, 'json') };
}

/**
 * The command line as the report shows it: header values and a URL's password hidden (a bearer token would
 * otherwise sit in a report that gets shared).
 */
export function shownCommand(argv: readonly string[]): string {
  const shown = argv.map((arg, i) => {
    const previous = argv[i - 1];
    if (previous === '-H' || previous === '--header') return arg.replace(/:.*/s, ': ***');
    if (/^--header=/.test(arg)) return arg.replace(/^(--header=[^:]*):.*/s, '$1: ***');
    return /^[a-z]+:\/\//i.test(arg) ? redactUrl(arg) : arg;
  });
  return ['nodescale', 'sweep', ...shown]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** The files `--out` writes for a sweep. */
export function sweepFiles(result: SweepResult, context?: ReportContext): Record<string, string> {
  const charts = sweepCharts(result);
  return {
    'results.json': `${JSON.stringify(result, null, 2)}\n`,
    'results.csv': sweepCsv(result),
    'report.html': sweepHtml(result, charts, context),
    'throughput.svg': charts.throughput,
    'latency.svg': charts.latency,
    'latency-vs-throughput.svg': charts.latencyVsThroughput,
  };
}

async function run(argv: string[], io: Io): Promise<number> {
  const args = parseSweepArgs(argv);
  if (args.out !== null) prepareOutDir(args.out);
  const { levels } = args.options;
  const perLevel =
    (args.options.warmupMs ?? SWEEP_DEFAULTS.warmupMs) + (args.options.durationMs ?? SWEEP_DEFAULTS.durationMs);
  const bar = new ProgressBar(io.stderr, io.interactive);
  const result = await runSweep(args.options, {
    signal: io.signal,
    onProgress: (index, progress) => {
      const warm = args.options.warmupMs ?? SWEEP_DEFAULTS.warmupMs;
      const within = progress.phase === 'warmup' ? 0 : (warm + progress.elapsedMs) / perLevel;
      bar.update(
        `level ${index + 1}/${levels.length} (${levels[index]})`,
        (index + within) / levels.length,
        rateDetail(progress.completed, progress.elapsedMs),
      );
    },
    onLevelDone: (index, level) => {
      if (!io.interactive || args.json) return;
      bar.clear();
      io.stderr.write(`level ${levels[index]}: ${Math.round(level.throughput)} req/s, p99 ${level.latencyMs.p99} ms\n`);
    },
  }).finally(() => bar.clear());
  const context = { date: new Date(), nodescale: version(), node: process.versions.node, command: shownCommand(argv) };
  const written = args.out === null ? [] : writeOutFiles(args.out, sweepFiles(result, context));
  if (args.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else {
    io.stdout.write(`${result.url} — ${result.mode} sweep\n\n${formatSweepTable(result)}\n\n${formatKnee(result)}\n`);
    if (result.budget !== null) io.stdout.write(`${formatBudget(result)}\n`);
    if (written.length > 0) io.stdout.write(`\nWrote ${written.join(', ')}\n`);
  }
  // With a budget, the sweep fails only when no level met it: otherwise the highest that did is the answer.
  if (result.budget !== null && result.budget.highestPassing === null) {
    const failed = result.levels[0]?.thresholds.filter((outcome) => !outcome.passed) ?? [];
    for (const outcome of failed)
      io.stderr.write(
        `error NS_ERR_THRESHOLD_FAILED: ${outcome.threshold} failed at the first level (${result.levels[0]!.level}): ${outcome.detail}\n`,
      );
    return 1;
  }
  return 0;
}

function formatBudget(result: SweepResult): string {
  const { thresholds, highestPassing, firstFailing } = result.budget!;
  const unit = result.mode === 'rate' ? ' req/s' : ' connections';
  const answer =
    highestPassing === null
      ? 'no level met it'
      : `the highest level that met it: ${highestPassing}${unit}${firstFailing === null ? ' (every level met it: sweep higher)' : `; ${firstFailing}${unit} did not`}`;
  return `\nBudget ${thresholds.join(', ')}: ${answer}`;
}

export const sweepCommand: Command = { name: 'sweep', help, run };
