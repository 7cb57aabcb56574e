import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodescaleError } from '../../src/errors.ts';
import { runBench } from '../../src/loadtest/run.ts';
import { runSweep } from '../../src/loadtest/sweep.ts';
import { evaluateThresholds, parseThreshold } from '../../src/loadtest/thresholds.ts';
import { runCli } from '../helpers/cli.ts';
import { countingServer } from '../helpers/servers.ts';

const rejectsWith = (code: string, pattern?: RegExp) => (error: unknown) =>
  error instanceof NodescaleError && error.code === code && (pattern === undefined || pattern.test(error.message));

test('thresholds parse in k6 terms; what does not parse is refused with NS_ERR_THRESHOLD', () => {
  const parsed = (source: string) => {
    const { metric, op, value, share, name } = parseThreshold(source);
    return { metric, op, value, share, name };
  };
  assert.deepEqual(parsed('p99<50ms'), { metric: 'p99', op: '<', value: 50, share: false, name: null });
  assert.deepEqual(parsed('p(95) <= 0.2s'), { metric: 'p(95)', op: '<=', value: 200, share: false, name: null });
  assert.deepEqual(parsed('mean<500us'), { metric: 'mean', op: '<', value: 0.5, share: false, name: null });
  assert.deepEqual(parsed('errors=0'), { metric: 'errors', op: '=', value: 0, share: false, name: null });
  assert.deepEqual(parsed('status.5xx<1%'), { metric: 'status.5xx', op: '<', value: 0.01, share: true, name: null });
  assert.deepEqual(parsed('rps>=1000'), { metric: 'rps', op: '>=', value: 1000, share: false, name: null });
  assert.deepEqual(parsed('p99{search}<200'), { metric: 'p99', op: '<', value: 200, share: false, name: 'search' });
  for (const [bad, why] of [
    ['p99<fast', /expected METRIC OP NUMBER/],
    ['p99', /expected METRIC OP NUMBER/],
    ['latency<5ms', /unknown metric "latency"/],
    ['p(101)<5ms', /unknown metric/],
    ['p99<5%', /a latency is a duration/],
    ['rps>5%', /rps is a rate/],
    ['errors<5ms', /errors is not a duration/],
    ['errors.bogus=0', /unknown metric/],
    ['rps{search}>5', /\{name\} applies to latency and status/],
  ] as const)
    assert.throws(() => parseThreshold(bad), rejectsWith('NS_ERR_THRESHOLD', why), bad);
});

test('thresholds are judged on the result: percentiles from its histogram, shares of its requests, per name', async (t) => {
  // One request in ten is a 503; the slow path takes 30 ms.
  const server = await countingServer(t, (req, res, n) => {
    if (n % 10 === 0) res.statusCode = 503;
    if (req.url === '/slow') return void setTimeout(() => res.end('ok'), 30);
    res.end('ok');
  });
  const requests = [
    { name: 'fast', path: '/' },
    { name: 'slow', path: '/slow' },
  ];
  const result = await runBench({ url: server.url, amount: 200, connections: 4, requests });
  const judge = (sources: string[]) =>
    evaluateThresholds(result, sources.map(parseThreshold)).map((outcome) => outcome.passed);
  assert.deepEqual(judge(['status.5xx>=9%', 'status.5xx<=11%', 'status.503=20', 'status.2xx=180', 'non2xx=20']), [
    true,
    true,
    true,
    true,
    true,
  ]);
  assert.deepEqual(judge(['errors=0', 'errors=20', 'errors.timeout=0', 'status.5xx<1%']), [false, true, true, false]);
  assert.deepEqual(judge(['p50{slow}>=25ms', 'p50{fast}<25ms', 'max>=25ms', 'p100>=25ms']), [true, true, true, true]);
  const [p99] = evaluateThresholds(result, [parseThreshold('p99<1s')]);
  assert.equal(p99!.actual, result.latencyMs.p99);
  assert.throws(
    () => evaluateThresholds(result, [parseThreshold('p99{nope}<1s')]),
    rejectsWith('NS_ERR_THRESHOLD', /no requests are named "nope"; the names are fast, slow/),
  );
});

test('bench --assert: each threshold printed, any failure exits 1 with one line per failed threshold', async (t) => {
  const server = await countingServer(t);
  const pass = await runCli(['bench', server.url, '-n', '300', '-c', '2', '-a', 'errors=0', '-a', 'p99<10s']);
  assert.equal(pass.code, 0, pass.stderr);
  assert.match(pass.stdout, /Thresholds {2}✓ errors=0 {2}\(errors 0\)\n {12}✓ p99<10s/);
  const fail = await runCli([
    'bench',
    server.url,
    '-n',
    '300',
    '-c',
    '2',
    '-a',
    'rps>1e9',
    '-a',
    'rps>=1000000000',
    '-a',
    'max<1us',
  ]);
  assert.equal(fail.code, 2, 'a threshold that does not parse is a usage error, before any run');
  assert.match(fail.stderr, /NS_ERR_THRESHOLD: --assert "rps>1e9"/);
  const failed = await runCli([
    'bench',
    server.url,
    '-n',
    '300',
    '-c',
    '2',
    '-a',
    'rps>=1000000000',
    '-a',
    'max<1us',
    '-a',
    'errors=0',
  ]);
  assert.equal(failed.code, 1);
  const lines = failed.stderr.trim().split('\n');
  assert.equal(lines.length, 2, failed.stderr);
  assert.match(lines[0]!, /^error NS_ERR_THRESHOLD_FAILED: rps>=1000000000 failed: rps \d+$/);
  assert.match(lines[1]!, /^error NS_ERR_THRESHOLD_FAILED: max<1us failed: max /);
  assert.equal(server.count(), 600);
});

test('sweep with a budget stops at the first level that fails it: the highest level that met it is the answer', async (t) => {
  // More than two requests in flight at once get a 503: levels 1 and 2 meet 'status.5xx=0', 4 does not.
  let inFlight = 0;
  const server = await countingServer(t, (_req, res) => {
    inFlight++;
    const status = inFlight > 2 ? 503 : 200;
    setTimeout(() => {
      inFlight--;
      res.statusCode = status;
      res.end('ok');
    }, 3);
  });
  const result = await runSweep({
    url: server.url,
    levels: [1, 2, 4, 8],
    durationMs: 300,
    warmupMs: 0,
    maxErrorRatio: 1,
    thresholds: ['status.5xx=0'],
  });
  assert.deepEqual(result.budget, { thresholds: ['status.5xx=0'], highestPassing: 2, firstFailing: 4 });
  assert.deepEqual(
    result.levels.map((level) => level.level),
    [1, 2, 4],
  );
  assert.match(result.stoppedEarly!, /level 4 failed status\.5xx=0/);
  const cli = await runCli([
    'sweep',
    server.url,
    '--levels',
    '1,2,4',
    '-d',
    '300ms',
    '--warmup',
    '0',
    '--max-errors',
    '100%',
    '-a',
    'status.5xx=0',
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /Budget status\.5xx=0: the highest level that met it: 2 connections; 4 connections did not/);
  const none = await runCli([
    'sweep',
    server.url,
    '--levels',
    '4,8',
    '-d',
    '300ms',
    '--warmup',
    '0',
    '--max-errors',
    '100%',
    '-a',
    'status.5xx=0',
  ]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^error NS_ERR_THRESHOLD_FAILED: status\.5xx=0 failed at the first level \(4\)/);
});
