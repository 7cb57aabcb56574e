/**
 * Fetches a page for the tagger, treating the URL as the untrusted input it is:
 * - http: and https: only; every address the host resolves to is checked against the AddressPolicy *in the lookup
 *   the connection itself uses*, so a DNS answer cannot change between the check and the connect (rebinding);
 *   IP literals are checked before any connection;
 * - redirects followed by hand, each one checked the same way, at most `maxRedirects`;
 * - one deadline for the whole fetch, redirects included; the body capped at `maxBytes` (announced or not);
 * - an HTML content type required.
 * Every refusal is a NodescaleError with its own code, for the GraphQL error's extensions.
 */
import dns from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import { NodescaleError, type ErrorCode } from '../errors.ts';
import { readAtMost } from '../read-body.ts';
import type { AddressPolicy } from './address-policy.ts';

export interface FetchOptions {
  policy: AddressPolicy;
  /** Default 2 MiB. */
  maxBytes?: number;
  /** For the whole fetch, redirects included. Default 5000 ms. */
  timeoutMs?: number;
  /** Default 5. */
  maxRedirects?: number;
}

export const FETCH_DEFAULTS = Object.freeze({ maxBytes: 2 * 1024 * 1024, timeoutMs: 5000, maxRedirects: 5 });

export interface FetchedPage {
  /** The final URL, after redirects. */
  url: string;
  html: string;
}

const fail = (code: ErrorCode, message: string) => new NodescaleError(code, message);

function checkedLookup(policy: AddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, family: options.family ?? 0 }, (error, addresses) => {
      if (error)
        return callback(
          fail('NS_ERR_FETCH_FAILED', `cannot resolve ${hostname}: ${error.code ?? error.message}`),
          '',
          0,
        );
      // Refused if any answer is: a name that resolves to a public and a private address is not trusted either.
      for (const { address } of addresses) {
        const refusal = policy.refusal(address);
        if (refusal !== null)
          return callback(fail('NS_ERR_FETCH_REFUSED', `${hostname} resolves to ${refusal}`), '', 0);
      }
      if (options.all) (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

function pageUrl(raw: string, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw fail('NS_ERR_FETCH_URL', `not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw fail('NS_ERR_FETCH_URL', `only http: and https: URLs are fetched, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '')
    throw fail('NS_ERR_FETCH_URL', 'URLs with credentials are not fetched');
  return url;
}

function request(url: URL, policy: AddressPolicy, signal: AbortSignal): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(host) !== 0) {
    const refusal = policy.refusal(host);
    if (refusal !== null) return Promise.reject(fail('NS_ERR_FETCH_REFUSED', refusal));
  }
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(
      url,
      {
        lookup: checkedLookup(policy),
        signal,
        headers: {
          accept: 'text/html,application/xhtml+xml',
          'accept-encoding': 'identity',
          'user-agent': 'nodescale-tagger',
        },
      },
      resolve,
    );
    req.on('error', reject);
  });
}

function contentCharset(contentType: string): string {
  return /charset="?([\w-]+)/i.exec(contentType)?.[1] ?? 'utf-8';
}

async function readPage(res: IncomingMessage, maxBytes: number, url: URL): Promise<string> {
  const body = await readAtMost(res, maxBytes);
  if (body === null) throw fail('NS_ERR_FETCH_TOO_LARGE', `${url.host} sent more than ${maxBytes} bytes`);
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(contentCharset(String(res.headers['content-type'] ?? '')));
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  return decoder.decode(body);
}

export async function fetchPage(raw: string, options: FetchOptions): Promise<FetchedPage> {
  // Field by field: an option given as undefined takes its default.
  const o = {
    policy: options.policy,
    maxBytes: options.maxBytes ?? FETCH_DEFAULTS.maxBytes,
    timeoutMs: options.timeoutMs ?? FETCH_DEFAULTS.timeoutMs,
    maxRedirects: options.maxRedirects ?? FETCH_DEFAULTS.maxRedirects,
  };
  const signal = AbortSignal.timeout(o.timeoutMs);
  let url = pageUrl(raw);
  try {
    for (let redirects = 0; ; redirects++) {
      const res = await request(url, o.policy, signal);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location !== undefined) {
        res.resume();
        if (redirects === o.maxRedirects)
          throw fail(
            'NS_ERR_FETCH_REDIRECTS',
            `more than ${o.maxRedirects} redirects (the last to ${res.headers.location})`,
          );
        url = pageUrl(res.headers.location, url);
        continue;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        throw fail('NS_ERR_FETCH_FAILED', `${url.host} answered ${status}`);
      }
      const type = String(res.headers['content-type'] ?? '');
      if (!/^\s*(text\/html|application\/xhtml\+xml)\b/i.test(type)) {
        res.destroy();
        throw fail('NS_ERR_FETCH_NOT_HTML', `the page is not HTML (content-type ${JSON.stringify(type || 'none')})`);
      }
      const announced = Number(res.headers['content-length']);
      if (announced > o.maxBytes) {
        res.destroy();
        throw fail('NS_ERR_FETCH_TOO_LARGE', `the page is ${announced} bytes, over the limit of ${o.maxBytes}`);
      }
      return { url: url.href, html: await readPage(res, o.maxBytes, url) };
    }
  } catch (error) {
    if (signal.aborted)
      throw fail('NS_ERR_FETCH_TIMEOUT', `no complete page from ${url.host} within ${o.timeoutMs} ms`);
    if (error instanceof NodescaleError) throw error;
    throw fail(
      'NS_ERR_FETCH_FAILED',
      `cannot fetch from ${url.host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}
