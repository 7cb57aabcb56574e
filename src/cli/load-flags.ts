/**
 * Flags that shape the load, shared by bench, sweep and compare-servers.
 */
import { readFileSync } from 'node:fs';
import { NodescaleError } from '../errors.ts';
import { BENCH_DEFAULTS, type BenchOptions } from '../loadtest/options.ts';
import { readDataFile, readRequestsFile, REQUEST_FILE_LIMITS } from '../loadtest/request-file.ts';
import { REQUEST_SET_LIMITS } from '../loadtest/request-set.ts';
import { parseThreshold, type Threshold } from '../loadtest/thresholds.ts';
import { formatDuration } from '../units.ts';
import { boolFlag, defined, durationFlag, intFlag, listFlag, textFlag, type OptionSpecs, type Values } from './args.ts';

export const REQUEST_FLAGS = {
  method: { type: 'string', short: 'm' },
  header: { type: 'string', short: 'H', multiple: true },
  body: { type: 'string', short: 'b' },
  'body-file': { type: 'string' },
  timeout: { type: 'string', short: 't' },
  requests: { type: 'string' },
  data: { type: 'string' },
  seed: { type: 'string' },
  insecure: { type: 'boolean', short: 'k' },
  ca: { type: 'string' },
  servername: { type: 'string' },
} as const satisfies OptionSpecs;

/** `--assert`, of bench and sweep. */
export const ASSERT_FLAGS = {
  assert: { type: 'string', short: 'a', multiple: true },
} as const satisfies OptionSpecs;

export const ASSERT_HELP = `Thresholds (k6's, as flags; each printed as passed or failed, any failure exits 1):
  -a, --assert EXPR       'p99<50ms', 'p(95)<=200ms', 'mean<10ms', 'errors=0', 'errors<0.1%', 'rps>=1000',
                          'status.5xx<1%', 'status.429=0', 'p99{search}<100ms' (requests named search); repeatable`;

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
  -t, --timeout DUR       a request without a response after DUR is an error (default ${formatDuration(B.timeoutMs)})
  {{seq}} in the URL, a header or the body is the request's number (0, 1, …): a unique value per request.

Many requests:
      --requests FILE     a JSON array or NDJSON of requests: {"name","method","path" or "url","headers","body",
                          "weight"}, sent in order, or at random in proportion to weights when any has one
      --data FILE         JSON Lines of objects: {{field}} in paths, headers and bodies takes each row in turn
      --seed N            seed of the weighted random order (default: random, printed in the result)
  Requests × rows are encoded before the run up to ${REQUEST_SET_LIMITS.requests.toLocaleString('en-US')} requests and ${REQUEST_SET_LIMITS.bytes / 1024 / 1024} MiB; past that, or with
  {{seq}}, each is rendered as it is sent (a little more CPU per request). Limits: ${REQUEST_FILE_LIMITS.requests.toLocaleString('en-US')} requests, bodies of ${REQUEST_FILE_LIMITS.bodyBytes / 1024 / 1024} MiB.

https:
  -k, --insecure          do not verify the server's certificate
      --ca FILE           trust the CA certificate(s) in FILE (PEM) instead of Node's bundled ones
      --servername NAME   the name sent in SNI and checked on the certificate (default: the URL's host)`;

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
  const requests = textFlag(values, 'requests');
  const data = textFlag(values, 'data');
  const ca = textFlag(values, 'ca');
  return defined({
    method: textFlag(values, 'method'),
    headers: headers.length > 0 ? Object.fromEntries(headers.map(parseHeader)) : undefined,
    body: bodyFile === undefined ? body : readBodyFile(bodyFile),
    timeoutMs: durationFlag(values, 'timeout'),
    requests: requests === undefined ? undefined : readRequestsFile(requests),
    data: data === undefined ? undefined : readDataFile(data),
    seed: intFlag(values, 'seed'),
    insecure: boolFlag(values, 'insecure') ? true : undefined,
    ca: ca === undefined ? undefined : readPem(ca),
    servername: textFlag(values, 'servername'),
  });
}

/** The thresholds of `--assert`, parsed before the run: a typo fails at once, not after it. */
export function assertFlags(values: Values): Threshold[] {
  return listFlag(values, 'assert').map(parseThreshold);
}

/**
 * The target URL: the positional one, or with --requests and none given, the origin of the first request that
 * names a full URL.
 */
export function targetUrl(command: string, positionals: string[], options: Partial<BenchOptions>): string {
  if (positionals[0] !== undefined) return positionals[0];
  const first = options.requests?.find((request) => request.url !== undefined)?.url;
  if (first !== undefined && URL.canParse(first)) return `${new URL(first).origin}/`;
  throw new NodescaleError(
    'NS_ERR_USAGE',
    `${command}: missing the target URL${options.requests === undefined ? '' : ' (or a "url" in the requests file)'}`,
  );
}

function readPem(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `--ca: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
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
