/** The talk's plain `node:http` baseline. */
import http from 'node:http';

export function createHttpServer(): http.Server {
  return http.createServer({ keepAliveTimeout: 65_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 12 });
    res.end('Hello World!');
  });
}
