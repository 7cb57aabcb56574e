/**
 * The defect issue 17 fixes, end to end: two tagger workers under `nodescale run`, sharing one real redis-server.
 * A URL tagged through one worker is found through the other, and still after `nodescale reload` (new workers);
 * concurrent requests for one new URL, spread over both workers, cause one fetch and one extraction.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { listenForAnnouncements } from '../../src/ipc.ts';
import { startRedis, type RedisServer } from '../../src/servers/redis.ts';
import { defaultControlPath } from '../../src/supervisor/control.ts';
import { BIN, runBin } from '../helpers/cli.ts';
import { countingServer } from '../helpers/servers.ts';
import { waitUntil } from '../helpers/wait.ts';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());

/** A GraphQL GET on a connection of its own: the cluster's round robin gives consecutive ones to different workers. */
function query(api: string, q: string): Promise<{ data?: Record<string, unknown>; errors?: unknown[] }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${api}/graphql?query=${encodeURIComponent(q)}`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

const ARTICLE = (topic: string) =>
  `<html><head><title>${topic}</title></head><body><article><p>${`The ${topic} and the ${topic} again. `.repeat(20)}</p></article></body></html>`;

test('two workers under nodescale run share one index, through a reload; one extraction per URL for the fleet', async (t) => {
  const hits = new Map<string, number>();
  // Slow pages, so that concurrent requests for one URL overlap.
  const pages = await countingServer(t, (req, res) => {
    hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/html' }).end(ARTICLE('nebula')), 300);
  });
  let announced!: (url: string) => void;
  const apiUrl = new Promise<string>((resolve) => (announced = resolve));
  const announcements = await listenForAnnouncements((a) => a.service === 'tagger' && announced(a.url));
  t.after(() => announcements.close());
  const name = `store-${process.pid}`;
  const run = spawn(
    process.execPath,
    [
      BIN,
      'run',
      BIN,
      '-w',
      '2',
      '--name',
      name,
      '--probation',
      '1s',
      '--',
      'tagger',
      '--port',
      '0',
      '--threads',
      '1',
      '--store',
      redis.url,
      '--allow',
      '127.0.0.1',
      '--corpus-url',
      pages.url,
      '--no-shedding',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...announcements.env } },
  );
  let err = '';
  run.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => run.once('exit', resolve));
  t.after(() => {
    if (run.exitCode === null) run.kill('SIGKILL');
    rmSync(defaultControlPath(name), { force: true });
  });
  await waitUntil(() => /2 worker\(s\) ready/.test(err), `both workers are ready: ${err.slice(-1000)}`, 60_000);
  const api = await apiUrl;

  // Tagged through one worker…
  const page = `${pages.url}nebula.html`;
  const tagged = await query(api, `{ tags(url: "${page}") health { pid store } }`);
  const first = (tagged.data?.health as { pid: number; store: string }).pid;
  assert.deepEqual(tagged.data?.tags, ['nebula']);
  assert.equal((tagged.data?.health as { store: string }).store, 'redis');
  // …found through the other.
  const pids = new Set<number>([first]);
  let other: { urls: string[]; pid: number } | null = null;
  for (let i = 0; i < 20 && other === null; i++) {
    const answer = await query(api, '{ urls(tag: "nebula") health { pid } }');
    const pid = (answer.data?.health as { pid: number }).pid;
    pids.add(pid);
    if (pid !== first) other = { urls: answer.data?.urls as string[], pid };
  }
  assert.ok(other !== null, 'a second worker answered');
  assert.deepEqual(other.urls, [page]);

  // After a reload (new workers, new processes), still found.
  const reload = await runBin(['reload', '--name', name]);
  assert.equal(reload.code, 0, reload.stderr);
  const afterReload = await query(api, '{ urls(tag: "nebula") health { pid } }');
  assert.ok(!pids.has((afterReload.data?.health as { pid: number }).pid), 'answered by a new worker');
  assert.deepEqual(afterReload.data?.urls, [page]);

  // Single flight for the fleet: 8 concurrent requests for a new URL, on both workers, one fetch.
  const fresh = `${pages.url}fresh.html`;
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => query(api, `{ tags(url: "${fresh}") health { pid } }`)),
  );
  const served = new Set(answers.map((a) => (a.data?.health as { pid: number }).pid));
  assert.equal(served.size, 2, 'the requests reached both workers');
  for (const answer of answers) assert.deepEqual(answer.data?.tags, ['nebula']);
  assert.equal(hits.get('/fresh.html'), 1, 'one fetch (and so one extraction) for the whole fleet');

  run.kill('SIGTERM');
  assert.equal(await exited, 0);
});
