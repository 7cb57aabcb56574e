/**
 * `nodescale corpus serve`: the corpus on loopback, as the talk's web:8080 was, so load tests never leave the
 * machine. GET / lists the articles; /articles/<topic>-<n>.html serves one.
 */
import http from 'node:http';
import { listen, origin } from '../listen.ts';
import { corpus } from './generate.ts';

export interface CorpusServer {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

export async function startCorpusServer({ port = 8080, host = '127.0.0.1' } = {}): Promise<CorpusServer> {
  const pages = new Map(corpus().map((page) => [page.path, Buffer.from(page.html)]));
  const index = Buffer.from(
    `<!doctype html><html><head><meta charset="utf-8"><title>nodescale corpus</title></head><body><h1>nodescale corpus</h1><ul>\n${corpus()
      .map((page) => `<li><a href="${page.path}">${page.title}</a></li>`)
      .join('\n')}\n</ul></body></html>\n`,
  );
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const body = path === '/' || path === '/articles/' ? index : pages.get(path);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 65_000;
  const address = await listen(server, port, host, 'the corpus');
  return {
    url: origin(address),
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
