/**
 * `nodescale corpus serve`: the corpus on loopback, as the talk's web:8080 was, so load tests never leave the
 * machine. GET / lists the articles; /articles/<topic>-<n>.html serves one; `?repeat=K` (1 to 800) serves it with its
 * paragraphs K times over: a long page, whose extraction holds an event loop for long (docs/debugging.md).
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
    const [path, query] = (req.url ?? '/').split('?') as [string, string | undefined];
    const repeat = Number(new URLSearchParams(query ?? '').get('repeat') ?? 1);
    let body: Buffer | undefined = path === '/' || path === '/articles/' ? index : pages.get(path);
    if (body !== undefined && body !== index && Number.isInteger(repeat) && repeat > 1 && repeat <= 800)
      body = longPage(body, repeat);
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

/** The page with the paragraphs of its article repeated `times` times. */
function longPage(page: Buffer, times: number): Buffer {
  const html = page.toString('utf8');
  const paragraphs = html.match(/<p>[\s\S]*?<\/p>/g) ?? [];
  const at = html.lastIndexOf('</p>');
  if (at === -1) return page;
  const more = paragraphs.join('\n').repeat(times - 1);
  return Buffer.from(`${html.slice(0, at + 4)}\n${more}${html.slice(at + 4)}`);
}
