/**
 * Flags that shape the load, shared by bench, sweep and compare-servers.
 */
import { readFileSync } from 'node:fs';
import { NodescaleError } from '../errors.ts';
import { BENCH_DEFAULTS, type BenchOptions } from '../loadtest/options.ts';
import { formatDuration } from '../units.ts';
import { defined, durationFlag, intFlag, listFlag, textFlag, type OptionSpecs, type Values } from './args.ts';

export const REQUEST_FLAGS = {
  method: { type: 'string', short: 'm' },
  header: { type: 'string', short: 'H', multiple: true },
  body: { type: 'string', short: 'b' },
  'body-file': { type: 'string' },
  timeout: { type: 'string', short: 't' },
} as const satisfies OptionSpecs;

export const CONNECTION_FLAGS = {
  connections: { type: 'string', short: 'c' },
  pipelining: { type: 'string', short: 'p' },
  workers: { type: 'string', short: 'w' },
  warmup: { type: 'string' },
} as const satisfies OptionSpecs;

const B = BENCH_DEFAULTS;

export const REQUEST_HELP = `Request:
  -m, --method M          HTTP method (default ${B.method})
  -H, --header "N: V"     a request header; repeat for more
  -b, --body TEXT         request body (Content-Length is added)
      --body-file FILE    request body read from a file
  -t, --timeout DUR       a request without a response after DUR is an error (default ${formatDuration(B.timeoutMs)})`;

export const CONNECTION_HELP = `Connections:
  -c, --connections N     connections kept open (default ${B.connections})
  -p, --pipelining N      requests in flight per connection (default ${B.pipelining})
  -w, --workers N         generator threads, to use more than one core (default ${B.workers})
      --warmup DUR        send for DUR before measuring (default ${B.warmupMs === 0 ? '0' : formatDuration(B.warmupMs)})`;

function parseHeader(raw: string): [string, string] {
  const colon = raw.indexOf(':');
  if (colon <= 0)
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `--header must look like "name: value", got ${JSON.stringify(raw)}`,
    );
  return [raw.slice(0, colon).trim(), raw.slice(colon + 1).trim()];
}

/** The request-shape part of BenchOptions from the flags. */
export function requestOptions(values: Values): Partial<BenchOptions> {
  const headers = listFlag(values, 'header');
  const body = textFlag(values, 'body');
  const bodyFile = textFlag(values, 'body-file');
  if (body !== undefined && bodyFile !== undefined)
    throw new NodescaleError('NS_ERR_USAGE', 'give --body or --body-file, not both');
  return defined({
    method: textFlag(values, 'method'),
    headers: headers.length > 0 ? Object.fromEntries(headers.map(parseHeader)) : undefined,
    body: bodyFile === undefined ? body : readBodyFile(bodyFile),
    timeoutMs: durationFlag(values, 'timeout'),
  });
}

function readBodyFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_BODY_FILE',
      `cannot read --body-file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** The connection part of BenchOptions from the flags. */
export function connectionOptions(values: Values): Partial<BenchOptions> {
  return defined({
    connections: intFlag(values, 'connections'),
    pipelining: intFlag(values, 'pipelining'),
    workers: intFlag(values, 'workers'),
    warmupMs: durationFlag(values, 'warmup'),
  });
}
