import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { BIN, runBin } from '../helpers/cli.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('nodescale demo: corpus and supervised API answer, a worker console is reachable, Ctrl-C stops everything', async (t) => {
  const name = `demo-test-${process.pid}`;
  const demo = spawn(
    process.execPath,
    [BIN, 'demo', '--port', '0', '--corpus-port', '0', '--metrics-port', '0', '--dashboard-port', '0', '--name', name],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => demo.exitCode === null && demo.kill('SIGKILL'));
  let out = '';
  demo.stdout.on('data', (c) => (out += c));
  demo.stderr.on('data', () => {});
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  for (let i = 0; i < 300 && !out.includes('Ctrl-C stops everything'); i++) await sleep(100);
  const api = /API\s+(http:\S+)\/graphql/.exec(out)?.[1];
  const corpus = /corpus\s+(http:\S+)\//.exec(out)?.[1];
  const metrics = /metrics\s+(http:\S+)/.exec(out)?.[1];
  const dashboard = /dashboard\s+(http:\S+)/.exec(out)?.[1];
  assert.ok(api && corpus && metrics && dashboard, out);
  assert.equal((await fetch(dashboard)).status, 200, 'the dashboard answers');
  // What the banner suggests writes outside the repository.
  const sweepOut = / --out (\S+)/.exec(out)?.[1];
  assert.ok(sweepOut?.startsWith(tmpdir()), `the suggested sweep writes under ${tmpdir()}: ${sweepOut}`);
  const query = { query: `{ tags(url: "${corpus}/articles/music-2.html") }` };
  const res = await fetch(`${api}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(query),
  });
  const body = (await res.json()) as { data: { tags: string[] } };
  assert.ok(body.data.tags.includes('music'), JSON.stringify(body));
  assert.match(await (await fetch(metrics)).text(), /nodescale_supervisor_worker_up\{worker="0"\} 1/);
  const info = await runBin(['console', '--name', name, '--worker', '0', 'info', '--json']);
  assert.equal(info.code, 0, info.stderr);
  demo.kill('SIGINT');
  assert.equal(await exited, 0);
  await sleep(300);
  let left = '';
  try {
    left = execFileSync('pgrep', ['-f', name], { encoding: 'utf8' });
  } catch {
    // pgrep exits 1 when nothing matches.
  }
  assert.equal(left.trim(), '', 'no process of the demo is left');
});

test('nodescale tagger, corpus and demo: bad flags are usage errors; a port in use fails at once', async (t) => {
  const busy = net.createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.after(() => busy.close());
  const inUse = await runBin([
    'demo',
    '--port',
    String((busy.address() as net.AddressInfo).port),
    '--corpus-port',
    '0',
    '--metrics-port',
    '0',
  ]);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /^error NS_ERR_LISTEN: the API cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  assert.equal((await runBin(['tagger', '--compute', 'gpu'])).code, 2);
  assert.match(
    (await runBin(['tagger', '--allow', 'nonsense', '--port', '0'])).stderr,
    /NS_ERR_INVALID_OPTION: --allow must be IP addresses or CIDR ranges/,
  );
  assert.equal((await runBin(['corpus', 'burn'])).code, 2);
  assert.equal((await runBin(['demo', '--workers', '0'])).code, 2);
  const list = await runBin(['corpus', 'list', '--json']);
  assert.ok((JSON.parse(list.stdout) as unknown[]).length >= 50);
});
