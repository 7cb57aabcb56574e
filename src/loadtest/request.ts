/**
 * The requests a load generator sends, encoded before the run: every send writes bytes made at start.
 *
 * A request is a template (method, path, headers, body) whose `{{field}}` placeholders take their values from a data
 * row, and `{{seq}}` the request's sequence number. Without placeholders a template is one encoded request.
 */
import { NodescaleError } from '../errors.ts';

export interface Target {
  url: URL;
  /** The host to connect to (brackets of an IPv6 literal removed). */
  host: string;
  port: number;
  /** https: the connections speak TLS. */
  tls: boolean;
}

export function parseTarget(raw: string | URL): Target {
  let url: URL;
  try {
    url = raw instanceof URL ? raw : new URL(raw);
  } catch {
    throw new NodescaleError(
      'NS_ERR_INVALID_URL',
      `"${String(raw)}" is not a URL; expected one like http://127.0.0.1:3000/path`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NodescaleError(
      'NS_ERR_INVALID_URL',
      `${url.protocol} URLs are not supported; nodescale load-tests http: and https: targets`,
    );
  }
  if (url.username || url.password) {
    throw new NodescaleError(
      'NS_ERR_INVALID_URL',
      'credentials in the URL are not supported; pass -H "authorization: …" instead',
    );
  }
  const tls = url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { url, host, port: url.port === '' ? (tls ? 443 : 80) : Number(url.port), tls };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/** Where a placeholder's value goes, which decides how it is escaped. */
type Context = 'path' | 'header' | 'body' | 'json';

/** A string cut at its placeholders: literal, field, literal, field, …, literal. */
interface Compiled {
  literals: string[];
  fields: string[];
  context: Context;
}

function compile(text: string, context: Context): Compiled {
  const literals: string[] = [];
  const fields: string[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    literals.push(text.slice(last, match.index));
    fields.push(match[1]!);
    last = match.index + match[0].length;
  }
  literals.push(text.slice(last));
  return { literals, fields, context };
}

/** A data row: the values of `{{field}}` placeholders. */
export type DataRow = Readonly<Record<string, unknown>>;

function valueText(value: unknown, context: Context, field: string): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  switch (context) {
    case 'path':
      return encodeURIComponent(text);
    case 'header':
      if (/[\r\n\0]/.test(text))
        throw new NodescaleError(
          'NS_ERR_DATA_FILE',
          `the value of {{${field}}} has a line break or NUL: it cannot go in a header`,
        );
      return text;
    case 'json':
      // Inside a JSON string of a JSON body: escaped as one, so a quote in the data keeps the body valid JSON.
      return JSON.stringify(text).slice(1, -1);
    case 'body':
      return text;
  }
}

function render(compiled: Compiled, row: DataRow, seq: number): string {
  if (compiled.fields.length === 0) return compiled.literals[0]!;
  let out = compiled.literals[0]!;
  for (let i = 0; i < compiled.fields.length; i++) {
    const field = compiled.fields[i]!;
    const value = field === 'seq' ? seq : row[field];
    if (value === undefined)
      throw new NodescaleError('NS_ERR_DATA_FILE', `a data row has no field "${field}" (used as {{${field}}})`);
    out += valueText(value, compiled.context, field) + compiled.literals[i + 1]!;
  }
  return out;
}

/** What one request of a run is made of, before its placeholders are filled in. */
export interface RequestShape {
  method: string;
  /** Path and query, starting with "/". */
  path: string;
  headers: Readonly<Record<string, string>>;
  body: Uint8Array | string | null;
  /** The body was a JSON value in a requests file: placeholders in it are escaped as JSON string content. */
  jsonBody?: boolean;
}

/** A request ready to render: its parts compiled once. */
export class RequestTemplate {
  readonly method: string;
  readonly head: boolean;
  /** Placeholders used, `seq` included. */
  readonly fields: ReadonlySet<string>;
  readonly #start: Compiled;
  readonly #headers: [string, Compiled][];
  readonly #body: Compiled | Buffer | null;
  readonly #host: string;
  readonly #addLength: boolean;

  constructor(target: Target, shape: RequestShape) {
    if (!TOKEN.test(shape.method))
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `method must be an HTTP token, got ${JSON.stringify(shape.method)}`,
      );
    if (!shape.path.startsWith('/') || /[\s\0]/.test(shape.path))
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `path must start with "/" and hold no whitespace, got ${JSON.stringify(shape.path)}`,
      );
    this.method = shape.method;
    this.head = shape.method === 'HEAD';
    this.#start = compile(`${shape.method} ${shape.path} HTTP/1.1\r\n`, 'path');
    const names = new Set<string>();
    this.#headers = [];
    for (const [name, value] of Object.entries(shape.headers)) {
      if (!TOKEN.test(name))
        throw new NodescaleError(
          'NS_ERR_INVALID_OPTION',
          `header name must be an HTTP token, got ${JSON.stringify(name)}`,
        );
      if (/[\r\n\0]/.test(value))
        throw new NodescaleError('NS_ERR_INVALID_OPTION', `header ${name} has a line break or NUL in its value`);
      names.add(name.toLowerCase());
      this.#headers.push([name, compile(value, 'header')]);
    }
    this.#host = names.has('host') ? '' : `Host: ${target.url.host}\r\n`;
    this.#body =
      shape.body === null
        ? null
        : typeof shape.body === 'string'
          ? compile(shape.body, shape.jsonBody === true ? 'json' : 'body')
          : // A Buffer arrives from another thread as a plain Uint8Array.
            Buffer.from(shape.body.buffer, shape.body.byteOffset, shape.body.length);
    this.#addLength = this.#body !== null && !names.has('content-length') && !names.has('transfer-encoding');
    const fields = new Set<string>(this.#start.fields);
    for (const [, compiled] of this.#headers) for (const field of compiled.fields) fields.add(field);
    if (this.#body !== null && !Buffer.isBuffer(this.#body)) for (const field of this.#body.fields) fields.add(field);
    this.fields = fields;
  }

  /** The request's bytes with `row`'s values and `seq` filled in. */
  render(row: DataRow, seq: number): Buffer {
    let head = render(this.#start, row, seq) + this.#host;
    for (const [name, compiled] of this.#headers) head += `${name}: ${render(compiled, row, seq)}\r\n`;
    const body =
      this.#body === null
        ? null
        : Buffer.isBuffer(this.#body)
          ? this.#body
          : Buffer.from(render(this.#body, row, seq), 'utf8');
    if (body !== null && this.#addLength) head += `Content-Length: ${body.length}\r\n`;
    const bytes = Buffer.from(`${head}\r\n`, 'latin1');
    return body === null ? bytes : Buffer.concat([bytes, body]);
  }
}

/** The path and query of a URL, with the placeholders the URL parser percent-encoded (`%7B%7Bseq%7D%7D`) restored. */
export function pathOf(url: URL): string {
  return `${url.pathname}${url.search}`.replace(/%7B%7B(.*?)%7D%7D/gi, '{{$1}}');
}
