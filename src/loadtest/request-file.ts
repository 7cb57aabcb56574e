/**
 * The files `bench --requests` and `--data` read: a list of requests (JSON array or NDJSON) and data rows (JSON
 * Lines or a JSON array). Both are untrusted input, checked entry by entry in time linear in their size, each problem
 * named by file, entry and field.
 */
import { readFileSync, statSync } from 'node:fs';
import { NodescaleError, type ErrorCode } from '../errors.ts';
import { nearestName } from '../unknown-options.ts';
import type { DataRow } from './request.ts';

/** One request of a requests file (also what `BenchOptions.requests` takes). */
export interface RequestSpec {
  /** Results are reported per name when any request has one. */
  name?: string;
  /** Default GET. */
  method?: string;
  /** Path and query, relative to the target URL's origin: "/tags?x=1". */
  path?: string;
  /** A full URL instead of a path: it must have the target's origin (scheme, host and port). */
  url?: string;
  headers?: Record<string, string>;
  /** A string is sent as is; any other JSON value as JSON, with content-type: application/json unless given. */
  body?: unknown;
  /** Relative weight: with any weight given, requests are picked at random in these proportions. */
  weight?: number;
}

export const REQUEST_FILE_LIMITS = Object.freeze({
  /** Bytes of a requests file. */
  fileBytes: 64 * 1024 * 1024,
  /** Requests in a requests file. */
  requests: 100_000,
  /** Bytes of one request body. */
  bodyBytes: 8 * 1024 * 1024,
  /** Bytes of a data file. */
  dataBytes: 256 * 1024 * 1024,
  /** Rows of a data file. */
  rows: 1_000_000,
});

const FIELDS = ['name', 'method', 'path', 'url', 'headers', 'body', 'weight'] as const;

function readLimited(file: string, limit: number, flag: string, code: ErrorCode): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (error) {
    throw new NodescaleError(
      code,
      `cannot read ${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  if (size > limit)
    throw new NodescaleError(
      code,
      `${flag} ${file} is ${size} bytes; the limit is ${limit} (${limit / 1024 / 1024} MiB)`,
    );
  return readFileSync(file, 'utf8');
}

/**
 * The JSON values of a file: a JSON array's elements, or one value per non-empty line (NDJSON). `where(i)` names
 * element i in messages.
 */
function parseJsonList(text: string, label: string, code: ErrorCode, max: number): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (error) {
      throw new NodescaleError(code, `${label} is not valid JSON: ${(error as Error).message}`);
    }
    const list = value as unknown[];
    if (list.length > max) throw new NodescaleError(code, `${label} has ${list.length} entries; the limit is ${max}`);
    return list;
  }
  const values: unknown[] = [];
  let line = 0;
  for (const raw of text.split('\n')) {
    line++;
    if (raw.trim() === '') continue;
    if (values.length === max) throw new NodescaleError(code, `${label} has more than ${max} entries`);
    try {
      values.push(JSON.parse(raw));
    } catch (error) {
      throw new NodescaleError(
        code,
        `${label} line ${line} is not valid JSON (a JSON array, or one JSON object per line): ${(error as Error).message}`,
      );
    }
  }
  return values;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the shape of one entry of a requests file; what it means against the target is checked by the options. */
export function checkRequestSpec(value: unknown, where: string): RequestSpec {
  const fail = (message: string) => new NodescaleError('NS_ERR_REQUESTS_FILE', `${where}: ${message}`);
  if (!isObject(value)) throw fail(`expected an object like {"method":"GET","path":"/"}, got ${JSON.stringify(value)}`);
  for (const key of Object.keys(value)) {
    if ((FIELDS as readonly string[]).includes(key)) continue;
    const nearest = nearestName(key, FIELDS);
    throw fail(
      `unknown field "${key}"${nearest === null ? `; the fields are ${FIELDS.join(', ')}` : `; did you mean "${nearest}"?`}`,
    );
  }
  for (const key of ['name', 'method', 'path', 'url'] as const)
    if (value[key] !== undefined && typeof value[key] !== 'string') throw fail(`${key} must be a string`);
  if (value.path !== undefined && value.url !== undefined) throw fail('give path or url, not both');
  if (value.headers !== undefined) {
    if (!isObject(value.headers)) throw fail('headers must be an object of strings');
    for (const [name, header] of Object.entries(value.headers))
      if (typeof header !== 'string') throw fail(`header ${name} must be a string`);
  }
  const { method, path } = value as { method?: string; path?: string };
  if (method !== undefined && !/^[A-Za-z]{1,20}$/.test(method))
    throw fail(`method must be an HTTP method such as GET or POST, got ${JSON.stringify(method)}`);
  if (path !== undefined && !path.startsWith('/')) throw fail(`path must start with "/", got ${JSON.stringify(path)}`);
  if (value.body !== undefined) {
    const bytes = Buffer.byteLength(typeof value.body === 'string' ? value.body : JSON.stringify(value.body));
    if (bytes > REQUEST_FILE_LIMITS.bodyBytes)
      throw fail(`body is ${bytes} bytes; the limit is ${REQUEST_FILE_LIMITS.bodyBytes}`);
  }
  if (value.weight !== undefined) {
    const weight = value.weight;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0)
      throw fail(`weight must be a number > 0, got ${JSON.stringify(weight)}`);
  }
  return value;
}

/** Reads and checks a requests file. */
export function readRequestsFile(file: string): RequestSpec[] {
  const text = readLimited(file, REQUEST_FILE_LIMITS.fileBytes, '--requests', 'NS_ERR_REQUESTS_FILE');
  const values = parseJsonList(text, `--requests ${file}`, 'NS_ERR_REQUESTS_FILE', REQUEST_FILE_LIMITS.requests);
  if (values.length === 0) throw new NodescaleError('NS_ERR_REQUESTS_FILE', `--requests ${file} has no requests`);
  return values.map((value, i) => checkRequestSpec(value, `--requests ${file} entry ${i + 1}`));
}

/** Reads and checks a data file: JSON objects, one per line (or a JSON array of them). */
export function readDataFile(file: string): DataRow[] {
  const text = readLimited(file, REQUEST_FILE_LIMITS.dataBytes, '--data', 'NS_ERR_DATA_FILE');
  const values = parseJsonList(text, `--data ${file}`, 'NS_ERR_DATA_FILE', REQUEST_FILE_LIMITS.rows);
  if (values.length === 0) throw new NodescaleError('NS_ERR_DATA_FILE', `--data ${file} has no rows`);
  values.forEach((value, i) => {
    if (!isObject(value))
      throw new NodescaleError('NS_ERR_DATA_FILE', `--data ${file} row ${i + 1} must be a JSON object`);
  });
  return values as DataRow[];
}
