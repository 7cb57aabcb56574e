/**
 * The request a load generator sends, encoded once: every send writes the same bytes.
 */
import { NodescaleError } from '../errors.ts';

export interface RequestShape {
  method: string;
  headers: Readonly<Record<string, string>>;
  body: Buffer | null;
}

export interface Target {
  url: URL;
  /** The host to connect to (brackets of an IPv6 literal removed). */
  host: string;
  port: number;
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
  if (url.protocol !== 'http:') {
    throw new NodescaleError(
      'NS_ERR_INVALID_URL',
      `${url.protocol} URLs are not supported; nodescale load-tests http: targets (terminate TLS in front of the target, or test it behind its proxy)`,
    );
  }
  if (url.username || url.password) {
    throw new NodescaleError(
      'NS_ERR_INVALID_URL',
      'credentials in the URL are not supported; pass -H "authorization: …" instead',
    );
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { url, host, port: url.port === '' ? 80 : Number(url.port) };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Encodes one request: request line, Host, the given headers, Content-Length when there is a body, and the body. */
export function encodeRequest(target: Target, shape: RequestShape): Buffer {
  if (!TOKEN.test(shape.method))
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `method must be an HTTP token, got ${JSON.stringify(shape.method)}`,
    );
  const lines = [`${shape.method} ${target.url.pathname}${target.url.search} HTTP/1.1`];
  const names = new Set<string>();
  for (const [name, value] of Object.entries(shape.headers)) {
    if (!TOKEN.test(name))
      throw new NodescaleError(
        'NS_ERR_INVALID_OPTION',
        `header name must be an HTTP token, got ${JSON.stringify(name)}`,
      );
    if (/[\r\n\0]/.test(value))
      throw new NodescaleError('NS_ERR_INVALID_OPTION', `header ${name} has a line break or NUL in its value`);
    names.add(name.toLowerCase());
    lines.push(`${name}: ${value}`);
  }
  if (!names.has('host')) lines.splice(1, 0, `Host: ${target.url.host}`);
  if (shape.body !== null && !names.has('content-length') && !names.has('transfer-encoding')) {
    lines.push(`Content-Length: ${shape.body.length}`);
  }
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return shape.body === null ? head : Buffer.concat([head, shape.body]);
}
