/**
 * The tagging API's HTTP server, on node:http and nodescale/runtime (metrics, overload shedding, health, graceful
 * shutdown, the admin console when configured):
 *   /graphql                  the API (graphql.ts)
 *   /benchmark/get-tags       the talk's fixed route: tags of the next corpus page, extracted again (no cache)
 *   /benchmark/get-urls       the talk's other route: urls(tag) from the index, no extraction
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { lookup } from 'node:dns/promises';
import net, { type AddressInfo } from 'node:net';
import { corpusPaths } from '../corpus/generate.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { sendJson } from '../json-response.ts';
import { listen, origin } from '../listen.ts';
import { protect } from '../protect/protect.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { AddressPolicy } from './address-policy.ts';
import { graphqlHandler, GRAPHQL_LIMITS } from './graphql.ts';
import { resolveTaggerServerOptions, TAGGER_DEFAULTS, type TaggerServerOptions } from './options.ts';
import { Tagger } from './tagger.ts';

export interface TaggerServer {
  url: string;
  server: http.Server;
  tagger: Tagger;
  runtime: Runtime;
  /**
   * Stops accepting, closes every connection (requests in flight are cut: the graceful path is the runtime's
   * shutdown, which drains first), then closes the compute and the store.
   */
  close(): Promise<void>;
}

function sendError(res: ServerResponse, error: unknown): void {
  if (error instanceof NodescaleError)
    return sendJson(res, error.status, { error: { code: error.code, message: error.message } });
  sendJson(res, 500, { error: { code: 'NS_ERR_INTERNAL', message: 'internal error' } });
}

/**
 * The corpus URL, checked before anything starts, and the addresses its pages may be fetched from: the benchmark
 * route fetches what the operator configured, so the corpus host's own addresses are allowed for it (a corpus on
 * loopback works out of the box), while tags(url) from clients keeps the tagger's policy.
 */
async function corpusAccess(text: string, allow: readonly string[]): Promise<{ url: string; policy: AddressPolicy }> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidOption('corpusUrl', 'an http: or https: URL', text);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw invalidOption('corpusUrl', 'an http: or https: URL', text);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: string[];
  try {
    addresses = net.isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `corpusUrl ${text}: its host does not resolve (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  return { url: url.href.replace(/\/$/, ''), policy: new AddressPolicy([...allow, ...addresses]) };
}

export async function startTaggerServer(given: TaggerServerOptions = {}): Promise<TaggerServer> {
  const options = resolveTaggerServerOptions(given);
  const corpus = await corpusAccess(options.corpusUrl, options.tagger.allow);
  const tagger = await Tagger.open(options.tagger);
  const graphql = graphqlHandler(tagger);
  const corpusUrl = corpus.url;
  const pages = corpusPaths().map((path) => `${corpusUrl}${path}`);
  const benchmarkTag = options.benchmarkTag;
  let next = 0;

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void> = {
    '/graphql': graphql,
    '/benchmark/get-tags': async (_req, res) => {
      const page = pages[next++ % pages.length]!;
      sendJson(res, 200, { url: page, tags: await tagger.tags(page, { cache: false, policy: corpus.policy }) });
    },
    '/benchmark/get-urls': async (_req, res, url) => {
      const tag = url.searchParams.get('tag') ?? benchmarkTag;
      const first = url.searchParams.get('first');
      const after = url.searchParams.get('after');
      const page = { ...(first === null ? {} : { first: Number(first) }), ...(after === null ? {} : { after }) };
      sendJson(res, 200, { tag, urls: await tagger.urls(tag, page) });
    },
    '/': (_req, res) =>
      sendJson(res, 200, {
        service: 'nodescale tagger',
        graphql: '/graphql',
        benchmarks: ['/benchmark/get-tags', '/benchmark/get-urls'],
        compute: tagger.compute.transport,
        store: tagger.store.kind,
      }),
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tagger');
    const route = routes[url.pathname];
    if (route === undefined) return sendError(res, new NodescaleError('NS_ERR_NOT_FOUND', `no route ${url.pathname}`));
    Promise.resolve(route(req, res, url)).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, error);
      else res.destroy();
    });
  });
  // Request bodies are time-limited too: a client trickling its body holds a socket for 30 s at most.
  server.requestTimeout = TAGGER_DEFAULTS.requestTimeoutMs;
  server.headersTimeout = TAGGER_DEFAULTS.headersTimeoutMs;
  const runtime = protect(server, { maxBodyBytes: GRAPHQL_LIMITS.bodyBytes, ...options.runtime });
  if (runtime.options.shutdown) runtime.onShutdown(() => tagger.close());
  let address: AddressInfo;
  try {
    address = await listen(server, options.port, options.host, 'the tagger');
  } catch (error) {
    // Nothing may outlive a failed start: the pool's threads would keep the process alive.
    runtime.close();
    await tagger.close();
    throw error;
  }
  return {
    url: origin(address),
    server,
    tagger,
    runtime,
    async close() {
      runtime.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await tagger.close();
    },
  };
}

export type { TaggerServerOptions };
