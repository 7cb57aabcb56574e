/**
 * The amqp transport against a real RabbitMQ (Debian's rabbitmq-server, a private node for this file): answers,
 * a service killed or stopped under load, poison, a broker restart, deadlines, bad input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { connect } from 'amqplib';
import { startAmqpService } from '../../src/compute/amqp-service.ts';
import { startCorpusServer } from '../../src/corpus/server.ts';
import { startTaggerServer } from '../../src/tagger/server.ts';
import { createCompute, resolveComputeOptions, type Compute } from '../../src/compute/compute.ts';
import { startRabbitMq, type RabbitMqNode } from '../../src/servers/rabbitmq.ts';
import { BIN, runBin } from '../helpers/cli.ts';
import { COMPUTE_TASKS, startWorker } from '../helpers/compute-worker.ts';
import { waitUntil } from '../helpers/wait.ts';

let broker: RabbitMqNode;
/** Test-only certificates (test/fixtures/tls): a CA, a server certificate for 127.0.0.1, a client one. */
const TLS = (name: string) => new URL(`../fixtures/tls/${name}`, import.meta.url).pathname;
before(async () => {
  // An AMQPS listener beside the plain one, requiring a client certificate signed by the test CA.
  broker = await startRabbitMq({ tls: { ca: TLS('ca.pem'), cert: TLS('server.pem'), key: TLS('server.key') } });
});
after(() => broker?.stop());

let queues = 0;
/** A queue of its own for each test: nothing one test leaves behind reaches another. */
const queue = () => `test.${process.pid}.${++queues}`;

const codeOf = (error: unknown) => (error as { code?: string }).code;

async function caller(t: { after(fn: () => unknown): void }, q: string, options: object = {}): Promise<Compute> {
  const compute = await createCompute({ transport: 'amqp', url: broker.url, queue: q, ...options });
  t.after(() => compute.close());
  return compute;
}

/** Calls `task` over and over with `concurrency` in flight until `stop()`; every outcome is kept. */
function load(compute: Compute, task: string, input: unknown, concurrency: number) {
  const outcomes: { ok: boolean; code?: string }[] = [];
  let running = true;
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (running) {
        try {
          await compute.call(task, input, { deadlineMs: 60_000 });
          outcomes.push({ ok: true });
        } catch (error) {
          outcomes.push({ ok: false, code: codeOf(error) });
          // A refused call comes back at once: a client waits before it tries again (and lets timers run).
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }),
  );
  return {
    outcomes,
    stop: async () => {
      running = false;
      await done;
      return outcomes;
    },
  };
}

test('calls are answered across two compute services; stats count them', async (t) => {
  const q = queue();
  const services = await Promise.all(
    [1, 2].map(() => startAmqpService({ url: broker.url, tasks: COMPUTE_TASKS, queue: q, threads: 1, prefetch: 2 })),
  );
  t.after(() => Promise.all(services.map((s) => s.stop())));
  const compute = await caller(t, q);
  assert.deepEqual(await compute.call('echo', { a: [1, 'b'] }), { a: [1, 'b'] });
  // Slow tasks, more than one service holds at once: both take some.
  await Promise.all(Array.from({ length: 8 }, () => compute.call('spin', { ms: 50 })));
  const served = services.map((s) => s.stats().completed);
  assert.ok(
    served.every((n) => n > 0),
    `both services ran tasks: ${served}`,
  );
  await assert.rejects(
    compute.call('fail', null),
    (e) => codeOf(e) === 'NS_ERR_COMPUTE_FAILED' && /bad input/.test((e as Error).message),
  );
  await assert.rejects(
    compute.call('nope', null),
    (e) => codeOf(e) === 'NS_ERR_COMPUTE_FAILED' && /no task named "nope"/.test((e as Error).message),
  );
  const stats = compute.stats();
  assert.deepEqual([stats.transport, stats.completed, stats.failed, stats.queued], ['amqp', 9, 2, 0]);
});

/** Two compute services and a caller keeping 8 calls of 20 ms in flight, answered already. */
async function twoServicesUnderLoad(t: TestContext) {
  const q = queue();
  const args = ['--queue', q, '--threads', '1', '--prefetch', '4'];
  const [first] = await Promise.all([startWorker(t, broker.url, args), startWorker(t, broker.url, args)]);
  const running = load(await caller(t, q), 'spin', { ms: 20 }, 8);
  await waitUntil(() => running.outcomes.length >= 20, 'calls are being answered');
  return { service: first!, running };
}

test('a compute service killed (SIGKILL) with tasks in flight under load: every call is answered, none lost', async (t) => {
  const { service, running } = await twoServicesUnderLoad(t);
  service.kill('SIGKILL');
  await service.exited;
  const before = running.outcomes.length;
  await waitUntil(() => running.outcomes.length >= before + 40, 'the other service answers the rest');
  const outcomes = await running.stop();
  assert.deepEqual(
    outcomes.filter((o) => !o.ok),
    [],
    'no call failed',
  );
  assert.ok(outcomes.length > 60);
});

test('a graceful stop (SIGTERM) of a compute service under load: it finishes what it holds, nothing is lost', async (t) => {
  const { service, running } = await twoServicesUnderLoad(t);
  service.kill('SIGTERM');
  assert.deepEqual(await service.exited, { code: 0, signal: null }, service.stderr());
  const before = running.outcomes.length;
  await waitUntil(() => running.outcomes.length >= before + 20, 'the other service answers the rest');
  const outcomes = await running.stop();
  assert.deepEqual(
    outcomes.filter((o) => !o.ok),
    [],
    'no call failed',
  );
});

for (const queueType of ['quorum', 'classic'] as const) {
  test(`a poison task is dead-lettered after --max-deliveries (${queueType} queue): its call fails with its code; the services keep serving`, async (t) => {
    const q = queue();
    const workers = await Promise.all(
      [1, 2, 3].map(() =>
        startWorker(t, broker.url, [
          '--queue',
          q,
          '--queue-type',
          queueType,
          '--threads',
          '1',
          '--prefetch',
          '1',
          '--max-deliveries',
          '2',
        ]),
      ),
    );
    const compute = await caller(t, q, { queueType });
    await assert.rejects(
      compute.call('die', null, { deadlineMs: 60_000 }),
      (e) => codeOf(e) === 'NS_ERR_COMPUTE_POISON' && /delivered 2 times/.test((e as Error).message),
    );
    const killed = (
      await Promise.all(
        workers.map((w) =>
          Promise.race([w.exited.then(() => 1), new Promise<number>((r) => setTimeout(() => r(0), 100))]),
        ),
      )
    ).reduce((a, b) => a + b, 0);
    assert.equal(killed, 2, 'two deliveries, two services killed; then it was dead-lettered');
    assert.equal(await compute.call('echo', 'still'), 'still', 'the third service still serves');
    // The poison is parked for people to look at.
    const connection = await connect(broker.url);
    t.after(() => connection.close());
    const channel = await connection.createChannel();
    const parked = await channel.checkQueue(`${q}.parked`);
    assert.equal(parked.messageCount, 1);
  });
}

test('the broker stopped and started again under load: calls fail fast with the retryable code, then all recovers', async (t) => {
  const q = queue();
  const service = await startWorker(t, broker.url, ['--queue', q, '--threads', '1', '--metrics', '0']);
  const readyz = `${/metrics on (http:\S+)\/metrics/.exec(service.stderr())![1]}/readyz`;
  const readiness = async () => {
    const response = await fetch(readyz);
    return `${response.status} ${((await response.json()) as { reason?: string }).reason ?? ''}`.trim();
  };
  assert.equal(await readiness(), '200');
  const compute = await caller(t, q);
  const running = load(compute, 'echo', 'x', 4);
  await waitUntil(() => running.outcomes.length >= 50, 'calls are being answered');
  await broker.stop({ keepData: true });
  await waitUntil(async () => (await readiness()) === '503 unavailable', 'the compute service says it is not ready');
  const started = Date.now();
  await assert.rejects(
    compute.call('echo', 'down', { deadlineMs: 30_000 }),
    (e) => codeOf(e) === 'NS_ERR_COMPUTE_UNAVAILABLE' && (e as { retryable?: boolean }).retryable === true,
  );
  assert.ok(Date.now() - started < 30_000, 'refused long before its deadline');
  await broker.start();
  await waitUntil(async () => (await readiness()) === '200', 'the compute service is ready again', 60_000);
  const back = running.outcomes.length;
  await waitUntil(
    () => running.outcomes.filter((o) => o.ok).length > back && running.outcomes.at(-1)!.ok,
    'calls succeed again',
    60_000,
  );
  const outcomes = await running.stop();
  const codes = new Set(outcomes.filter((o) => !o.ok).map((o) => o.code));
  assert.deepEqual(
    [...codes].filter((c) => c !== 'NS_ERR_COMPUTE_UNAVAILABLE'),
    [],
    'the outage shows as one retryable code only',
  );
  assert.equal(service.stderr().includes('Error'), false, 'the service did not crash');
  assert.equal(await compute.call('echo', 'after'), 'after');
});

test('a call declared idempotent survives a broker restart: sent again once the connection is back', async (t) => {
  const q = queue();
  const service = await startAmqpService({
    url: broker.url,
    tasks: COMPUTE_TASKS,
    queue: q,
    threads: 2,
    prefetch: 4,
  });
  t.after(() => service.stop());
  const compute = await caller(t, q);
  const idempotent = compute.call('sleep', { ms: 1000 }, { deadlineMs: 90_000, idempotent: true });
  const plain = compute.call('sleep', { ms: 1000 }, { deadlineMs: 90_000 }).catch((error: unknown) => error);
  await waitUntil(() => service.stats().inFlight === 2, 'the service holds both calls');
  await broker.stop({ keepData: true });
  assert.equal(codeOf(await plain), 'NS_ERR_COMPUTE_UNAVAILABLE', 'the other call fails at once');
  await broker.start();
  assert.equal(await idempotent, 1000);
});

test('a task whose deadline passes while it waits in the queue is never run', async (t) => {
  const q = queue();
  const service = await startAmqpService({
    url: broker.url,
    tasks: COMPUTE_TASKS,
    queue: q,
    threads: 1,
    prefetch: 1,
  });
  t.after(() => service.stop());
  const compute = await caller(t, q);
  const busy = compute.call('spin', { ms: 600 });
  await assert.rejects(
    compute.call('echo', 'late', { deadlineMs: 100 }),
    (e) => codeOf(e) === 'NS_ERR_COMPUTE_TIMEOUT',
  );
  await busy;
  await waitUntil(() => service.stats().expired === 1, 'the expired task was dropped', 10_000);
  assert.equal(service.stats().completed, 1, 'only the spin ran');
});

test('a duplicate reply is dropped by correlation id: each call gets its own answer once', async (t) => {
  const q = queue();
  const compute = await caller(t, q);
  // A service that answers every task twice, as a redelivery after a slow acknowledgement would.
  const connection = await connect(broker.url);
  t.after(() => connection.close());
  const channel = await connection.createChannel();
  await channel.consume(q, (message) => {
    if (message === null) return;
    const { input } = JSON.parse(message.content.toString()) as { input: unknown };
    for (let i = 0; i < 2; i++) {
      channel.sendToQueue(message.properties.replyTo, Buffer.from(JSON.stringify({ ok: true, output: [input, i] })), {
        correlationId: message.properties.correlationId,
      });
    }
    channel.ack(message);
  });
  assert.deepEqual(await compute.call('echo', 'a'), ['a', 0]);
  assert.deepEqual(await compute.call('echo', 'b'), ['b', 0], "not the first call's second answer");
});

test('the tagger over amqp: tags(url) extracted by `nodescale compute-worker tagger`, health names the transport', async (t) => {
  const q = queue();
  await startWorker(t, broker.url, ['--queue', q, '--threads', '1'], 'tagger');
  const corpus = await startCorpusServer({ port: 0 });
  t.after(() => corpus.close());
  const api = await startTaggerServer({
    port: 0,
    compute: 'amqp',
    broker: broker.url,
    queue: q,
    allow: ['127.0.0.1'],
    runtime: { logger: () => {}, shutdown: false, postMortem: false },
  });
  t.after(() => api.close());
  const graphql = async (query: string) =>
    (await (
      await fetch(`${api.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query }),
      })
    ).json()) as {
      data: { tags?: string[]; health?: { compute: string } };
    };
  const { data } = await graphql(`{ tags(url: "${corpus.url}/articles/astronomy-1.html") }`);
  assert.ok(data.tags!.length > 0, JSON.stringify(data));
  assert.equal((await graphql('{ health { compute } }')).data.health!.compute, 'amqp');
  const bad = await runBin(['tagger', '--compute', 'amqp']);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /NS_ERR_USAGE: tagger: --compute amqp needs the broker: --broker URL, --broker-file FILE or NODESCALE_BROKER_URL/,
  );
});

test('tasks delivered together share a thread hop, and a task that crashes its thread still fails alone', async (t) => {
  const q = queue();
  const service = await startAmqpService({
    url: broker.url,
    tasks: COMPUTE_TASKS,
    queue: q,
    threads: 1,
    prefetch: 16,
  });
  t.after(() => service.stop());
  const compute = await caller(t, q);
  // Published at once, delivered together: small tasks are handed to the thread in one share.
  const calls = [...Array.from({ length: 6 }, (_, i) => compute.call('echo', i)), compute.call('exit', null)];
  const outcomes = await Promise.allSettled(calls);
  assert.deepEqual(
    outcomes.slice(0, 6).map((o) => (o.status === 'fulfilled' ? o.value : codeOf(o.reason))),
    [0, 1, 2, 3, 4, 5],
  );
  assert.equal(outcomes[6]!.status === 'rejected' && codeOf(outcomes[6]!.reason), 'NS_ERR_COMPUTE_FAILED');
  assert.equal(await compute.call('echo', 'after'), 'after', 'the thread was replaced');
});

test('more calls in flight than maxQueue are refused at once with NS_ERR_COMPUTE_QUEUE_FULL', async (t) => {
  const q = queue();
  const service = await startAmqpService({
    url: broker.url,
    tasks: COMPUTE_TASKS,
    queue: q,
    threads: 1,
    prefetch: 1,
  });
  t.after(() => service.stop());
  const compute = await caller(t, q, { maxQueue: 2 });
  const held = [compute.call('spin', { ms: 300 }), compute.call('spin', { ms: 300 })];
  const started = Date.now();
  await assert.rejects(
    compute.call('echo', 'third'),
    (e) => codeOf(e) === 'NS_ERR_COMPUTE_QUEUE_FULL' && (e as { retryable?: boolean }).retryable === true,
  );
  assert.ok(Date.now() - started < 250, 'refused before the calls ahead of it ended');
  await Promise.all(held);
  assert.equal(await compute.call('echo', 'room again'), 'room again');
});

test('a publish the broker refuses (nack: a full queue that rejects publishes) is NS_ERR_COMPUTE_QUEUE_FULL, told from a lost connection', async (t) => {
  const q = queue();
  // The queue exists with a length limit of 0 that rejects publishes: the broker nacks every call's message.
  const connection = await connect(broker.url);
  t.after(() => connection.close());
  const channel = await connection.createChannel();
  await channel.assertQueue(q, { arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
  const compute = await caller(t, q);
  for (const idempotent of [false, true]) {
    await assert.rejects(compute.call('echo', 'refused', { idempotent, deadlineMs: 5000 }), {
      code: 'NS_ERR_COMPUTE_QUEUE_FULL',
      message: 'the broker refused task echo (nack)',
      retryable: true,
    });
  }
  // The idempotent one was held and sent once more on a new connection (that one had only nacks too: see below).
  assert.equal(compute.stats().connections, 2);
  assert.equal(compute.stats().queued, 0);
});

test('a connection that only ever had nacks is opened again; its idempotent calls are sent once more on the new one', async (t) => {
  const q = queue();
  // What RabbitMQ 3.10 does to a channel opened just after a quorum queue's leader died (amqp.ts, SUSPECT_NACKS_MS):
  // every publish nacked. Here a length limit of 0 makes the nacks; the queue is then declared again without it.
  const side = await connect(broker.url);
  t.after(() => side.close());
  const channel = await side.createChannel();
  await channel.assertQueue(q, { arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
  const compute = await caller(t, q);
  await assert.rejects(compute.call('echo', 'not idempotent'), { code: 'NS_ERR_COMPUTE_QUEUE_FULL' });
  const held = compute.call('echo', 'idempotent', { idempotent: true, deadlineMs: 20_000 });
  await waitUntil(
    () => compute.stats().awaitingResend === 1,
    'the nacked idempotent call held for the next connection',
  );
  assert.equal(compute.stats().connections, 1);
  await channel.deleteQueue(q);
  const service = await startAmqpService({ url: broker.url, tasks: COMPUTE_TASKS, queue: q, threads: 1 });
  t.after(() => service.stop());
  assert.equal(await held, 'idempotent', 'answered through the new connection');
  assert.equal(compute.stats().connections, 2);
  assert.equal(compute.stats().awaitingResend, 0);
  assert.equal(await compute.call('echo', 'next'), 'next');
});

test('an idempotent call sent again after its connection was lost, then nacked on the new one, is held again: the broker never took it', async (t) => {
  const q = queue();
  // Room for one message, and no service: the call waits in the queue; after a broker restart the caller sends it
  // again (its connection was lost with it in flight) and the queue, still holding the first copy, nacks it — as the
  // channel RabbitMQ 3.10 gives a caller just after its node died does (the lab's own-node test).
  const side = await connect(broker.url);
  const channel = await side.createChannel();
  await channel.assertQueue(q, { arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
  await side.close();
  const compute = await caller(t, q);
  const call = compute.call('echo', 'twice over', { idempotent: true, deadlineMs: 120_000 });
  await waitUntil(() => compute.stats().queued === 1, 'the call in the queue');
  await broker.stop({ keepData: true });
  await broker.start();
  await waitUntil(
    () => compute.stats().connections === 2 && compute.stats().awaitingResend === 1,
    'the call, nacked on the new connection, held for the next one (not failed)',
    30_000,
  );
  // The full queue gone: the caller's next connection (a second after the nack) declares it as it would, then a
  // service answers.
  const again = await connect(broker.url);
  t.after(() => again.close());
  await (await again.createChannel()).deleteQueue(q);
  const service = await startAmqpService({ url: broker.url, tasks: COMPUTE_TASKS, queue: q, threads: 1 });
  t.after(() => service.stop());
  assert.equal(await call, 'twice over');
  assert.equal(compute.stats().connections, 3);
});

test("compute-worker under nodescale run: ready once it consumes, its task metrics on the supervisor's /metrics, a graceful stop", async (t) => {
  const q = queue();
  const name = `compute-${process.pid}`;
  const child = spawn(
    process.execPath,
    [
      BIN,
      'run',
      BIN,
      '-w',
      '1',
      '--name',
      name,
      '--metrics',
      '0',
      '--',
      'compute-worker',
      COMPUTE_TASKS,
      '--broker',
      broker.url,
      '--queue',
      q,
      '--threads',
      '1',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => child.exitCode === null && child.kill('SIGKILL'));
  await waitUntil(() => /1 worker\(s\) ready/.test(err), 'the supervised compute worker is ready', 60_000);
  const metricsUrl = /metrics (http:\S+)/.exec(err)![1]!;
  const compute = await caller(t, q);
  for (let i = 0; i < 5; i++) assert.equal(await compute.call('echo', i), i);
  const metrics = await (await fetch(metricsUrl)).text();
  assert.match(metrics, /^nodescale_compute_tasks_total\{task="echo",outcome="ok",worker="0"\} 5$/m);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, err);
});

test('a list of broker nodes: one that refuses is passed over by the caller and by compute-worker (--broker a,b; --broker-file, a URL a line)', async (t) => {
  const q = queue();
  const refusing = 'amqp://nodescale:x@127.0.0.1:1';
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'ns-broker-')), 'broker');
  t.after(() => rmSync(path.dirname(file), { recursive: true, force: true }));
  writeFileSync(file, `# the cluster\n${refusing}\n\n${broker.url}\n`, { mode: 0o600 });
  const args = ['--queue', q, '--threads', '1'];
  const workers = [
    await startWorker(t, `${refusing},${broker.url}`, args),
    await startWorker(t, `${broker.url},${refusing}`, args),
    await startWorker(t, ['--broker-file', file], args),
  ];
  // Whichever node each connection starts at (a random one), every caller reaches the live one.
  for (let i = 0; i < 6; i++) {
    const compute = await createCompute({ transport: 'amqp', url: [refusing, broker.url], queue: q });
    assert.equal(await compute.call('echo', i), i);
    await compute.close();
  }
  const listed = await createCompute({ transport: 'amqp', url: `${refusing},${broker.url}`, queue: q });
  t.after(() => listed.close());
  assert.equal(await listed.call('echo', 'one string'), 'one string');
  // Every worker consumes (startWorker waited for it), and tells the nodes it was given without their passwords.
  for (const worker of workers) {
    assert.match(
      worker.stderr(),
      /consuming amqp:\/\/nodescale:\*\*\*@127\.0\.0\.1:1,amqp:\/\/nodescale:\*\*\*@127\.0\.0\.1:\d+#|consuming amqp:\/\/nodescale:\*\*\*@127\.0\.0\.1:\d+,amqp:\/\/nodescale:\*\*\*@127\.0\.0\.1:1#/,
    );
    assert.doesNotMatch(worker.stderr(), /:x@/, 'no password printed');
  }
});

test('bad input: a malformed or unreachable broker, wrong credentials, a missing tasks module: one line, a code, no stack', async (t) => {
  const port = broker.port;
  // An HTTP server where the broker should be (an HTTP proxy answering for an address that is gone, in the lab).
  const web = createServer((_request, response) => response.end('hello'));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  t.after(() => web.close());
  const webPort = (web.address() as AddressInfo).port;
  const cases: [string[], number, RegExp][] = [
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', 'http://x'],
      2,
      /^error NS_ERR_INVALID_OPTION: url must be an amqp:\/\/ or amqps:\/\/ URL/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS],
      2,
      /^error NS_ERR_USAGE: compute-worker: give the broker: --broker amqp:\/\/…, --broker-file FILE or NODESCALE_BROKER_URL/,
    ],
    [
      ['compute-worker', '/nonexistent/tasks.ts', '--broker', broker.url],
      2,
      /^error NS_ERR_INVALID_OPTION: compute-worker: no tasks module at \/nonexistent\/tasks\.ts/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', 'amqp://127.0.0.1:1'],
      1,
      /^error NS_ERR_COMPUTE_UNAVAILABLE: cannot connect to the broker at amqp:\/\/127\.0\.0\.1:1/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', `amqp://127.0.0.1:${webPort}`],
      1,
      /^error NS_ERR_COMPUTE_UNAVAILABLE: cannot connect to the broker at amqp:\/\/127\.0\.0\.1:\d+: what answered there speaks HTTP \(a web server, or an HTTP proxy in the way\), not RabbitMQ: check the address and port\n/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', 'amqp://127.0.0.1:1,amqp://127.0.0.1:2'],
      1,
      /^error NS_ERR_COMPUTE_UNAVAILABLE: cannot connect to any of the 2 broker nodes: amqp:\/\/127\.0\.0\.1:[12]: .*ECONNREFUSED.*; amqp:\/\/127\.0\.0\.1:[12]: /,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', `amqp://127.0.0.1:1,amqps://127.0.0.1:2`],
      2,
      /^error NS_ERR_INVALID_OPTION: url must be nodes of one cluster, all amqp:\/\/ or all amqps:\/\//,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', `amqp://guest:wrong@127.0.0.1:${port}`],
      1,
      /^error NS_ERR_BROKER_AUTH: cannot connect to the broker at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+: the credentials were refused/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', `${broker.url}/nope`],
      2,
      /^error NS_ERR_BROKER_VHOST: cannot connect to the broker at amqp:\/\/nodescale:\*\*\*@127\.0\.0\.1:\d+\/nope: it refused the virtual host "nope": it has none of that name, or the user may not use it/,
    ],
    // TLS: the broker's CA not given, then no client certificate: what to give, in one line.
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', broker.tlsUrl!],
      1,
      /^error NS_ERR_COMPUTE_UNAVAILABLE: cannot connect to the broker at amqps:.*: the server's certificate is not signed by a CA this process trusts \(SELF_SIGNED_CERT_IN_CHAIN\): give its CA \(--broker-ca FILE/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', broker.tlsUrl!, '--broker-ca', TLS('ca.pem')],
      1,
      /^error NS_ERR_COMPUTE_UNAVAILABLE: cannot connect to the broker at amqps:.*: the server refused this client's certificate, or asks for one \(.*\): give --broker-cert FILE and --broker-key FILE/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', broker.url, '--broker-ca', TLS('ca.pem')],
      2,
      /^error NS_ERR_USAGE: --broker-ca: give them with a --broker amqps:\/\/ URL/,
    ],
    [
      ['compute-worker', COMPUTE_TASKS, '--broker', broker.tlsUrl!, '--broker-cert', TLS('client.pem')],
      2,
      /^error NS_ERR_USAGE: --broker-cert and --broker-key go together/,
    ],
  ];
  for (const [argv, code, message] of cases) {
    const run = await runBin(argv);
    assert.equal(run.code, code, `${argv.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.equal(run.stderr.trim().split('\n').length, 1, `one line: ${run.stderr}`);
    assert.doesNotMatch(run.stderr, /wrong/, 'the password is not printed');
  }
});

test('amqps with a CA and a client certificate per connection: a compute-worker and a caller through a broker that requires one', async (t) => {
  const q = queue();
  const files = ['--broker-ca', TLS('ca.pem'), '--broker-cert', TLS('client.pem'), '--broker-key', TLS('client.key')];
  const service = await startWorker(t, broker.tlsUrl!, ['--queue', q, '--threads', '1', ...files]);
  assert.match(service.stderr(), /"broker":"amqps:\/\/nodescale:\*\*\*@127\.0\.0\.1:\d+"/);
  const tls = {
    ca: readFileSync(TLS('ca.pem')),
    cert: readFileSync(TLS('client.pem')),
    key: readFileSync(TLS('client.key')),
  };
  const compute = await createCompute({ transport: 'amqp', url: broker.tlsUrl!, tls, queue: q });
  t.after(() => compute.close());
  assert.deepEqual(await compute.call('echo', { over: 'tls' }), { over: 'tls' });
  // Only for a TLS URL, and a certificate with its key.
  assert.throws(() => resolveComputeOptions({ transport: 'amqp', url: broker.url, tls }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: /tls must be given with a TLS URL only/,
  });
  assert.throws(() => resolveComputeOptions({ transport: 'amqp', url: broker.tlsUrl!, tls: { cert: tls.cert } }), {
    code: 'NS_ERR_INVALID_OPTION',
  });
});
