/**
 * `nodescale logs NAME`: an app's log, from the files its supervisor writes (src/supervisor/log-file.ts): the last
 * lines of every worker in the order they came (one file: nothing to merge), or one worker's, since a time, as text
 * or as the JSON records themselves, and followed through rotations with --follow.
 */
import { existsSync } from 'node:fs';
import { appLogFile, checkAppName, readStartRecord } from '../apps/home.ts';
import { followLog, lastRecords, type LogFilter, type LogRecord } from '../apps/log-reader.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { boolFlag, COMMON_FLAGS, durationFlag, intFlag, parseCommandLine, requirePositional } from './args.ts';
import type { Command, Io } from './io.ts';

const FLAGS = {
  lines: { type: 'string', short: 'n' },
  follow: { type: 'boolean', short: 'f' },
  worker: { type: 'string' },
  since: { type: 'string' },
  ...COMMON_FLAGS,
} as const;

export const logsHelp = `Usage: nodescale logs NAME [--lines N] [--follow] [--worker N] [--since DUR] [--json]

The app's log: what its workers printed, each line with its time and worker, and the supervisor's own lines
(restarts, reloads, crashes). From the files the supervisor writes and rotates (nodescale ls shows where).

Options:
  -n, --lines N     the last N lines (default 15)
  -f, --follow      then every new line as it comes, through rotations, until Ctrl-C
      --worker N    only worker N's lines (its slot: 0, 1, …)
      --since DUR   only lines of the last DUR (10m, 2h)
      --json        the records as written, one JSON object a line
  -h, --help        this help`;

/** One record as a line of text: time, who, message (stderr marked). */
export function recordLine(record: LogRecord): string {
  const time = typeof record.time === 'string' ? record.time.replace('T', ' ').replace(/Z$/, '') : '';
  const who =
    record.source === 'supervisor'
      ? 'supervisor'
      : record.worker !== undefined
        ? `w${record.worker} ${record.pid ?? ''}${record.stream === 'stderr' ? ' err' : ''}`.trim()
        : '';
  const { time: _t, worker: _w, pid: _p, stream: _s, level, source: _so, message, ...rest } = record;
  const text = typeof message === 'string' ? message : JSON.stringify(message ?? rest);
  const extra = typeof message === 'string' && Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${time}${who === '' ? '' : ` [${who}]`}${level !== undefined && level !== 'info' ? ` ${String(level)}` : ''} ${text}${extra}`;
}

async function logs(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommandLine('logs', argv, FLAGS, 1);
  const name = checkAppName(requirePositional('logs', positionals, "the app's name"));
  const lines = intFlag(values, 'lines') ?? 15;
  if (!(lines >= 0)) throw invalidOption('--lines', 'a whole number ≥ 0', lines);
  const worker = intFlag(values, 'worker');
  if (worker !== undefined && !(worker >= 0)) throw invalidOption('--worker', 'a worker number (0, 1, …)', worker);
  const since = durationFlag(values, 'since');
  const json = boolFlag(values, 'json');
  const file = readStartRecord(name)?.logFile ?? appLogFile(name);
  if (!existsSync(file))
    throw new NodescaleError(
      'NS_ERR_APP_UNKNOWN',
      `${name} has no log at ${file}: it was not started with nodescale start (a nodescale run in a terminal writes to that terminal, or to its --log-file)`,
    );
  const filter: LogFilter = {
    ...(worker === undefined ? {} : { worker }),
    ...(since === undefined ? {} : { sinceMs: Date.now() - since }),
  };
  const print = (record: LogRecord) => io.stdout.write(`${json ? JSON.stringify(record) : recordLine(record)}\n`);
  for (const record of lastRecords(file, lines, filter)) print(record);
  if (!boolFlag(values, 'follow')) return 0;
  const stop = followLog(file, filter, print);
  await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
  stop();
  return 0;
}

export const logsCommand: Command = { name: 'logs', help: logsHelp, run: logs };
