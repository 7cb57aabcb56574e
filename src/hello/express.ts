/** A framework baseline: express 5, with its defaults (ETag and X-Powered-By included, as users run it). */
import http from 'node:http';
import express from 'express';

export function createExpressServer(): http.Server {
  const app = express();
  app.use((_req, res) => {
    res.type('text/plain').send('Hello World!');
  });
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  return server;
}
