/**
 * The amqp transport under the faults that a dead peer does not show: a compute service frozen (SIGSTOP) under load,
 * a compute host whose clock runs 15 s ahead, and hostile messages from either side (replies a caller must survive,
 * tasks a service must not trust). A private RabbitMQ node for this file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { connect, type ConsumeMessage } from 'amqplib';
import { startAmqpService } from '../../src/compute/amqp-service.ts';
import { createCompute, type Compute } from '../../src/compute/compute.ts';
import { startRabbitMq, type RabbitMqNode } from '../../src/servers/rabbitmq.ts';
import { COMPUTE_TASKS, startWorker } from '../helpers/compute-worker.ts';
import { waitUntil } from '../helpers/wait.ts';

let broker: RabbitMqNode;
before(async () => {
  broker = await startRabbitMq();
});
after(() => broker?.stop());

let queues = 0;
const queue = () => `faults.${process.pid}.${++queues}`;
const codeOf = (error: unknown) => (error as { code?: string }).code;

async function caller(t: { after(fn: () => unknown): void }, q: string, options: object = {}): Promise<Compute> {
  const compute = await createCompute({ transport: 'amqp', url: broker.url, queue: q, ...options });
  t.after(() => compute.close());
  return compute;
}

test('one of two compute services frozen (SIGSTOP) under load: idempotent calls are hedged, every one answered', async (t) => {
  const q = queue();
  // The defaults a user gets: prefetch (4 per thread), heartbeat, hedgeAfter.
  const [frozen] = await Promise.all([
    startWorker(t, broker.url, ['--queue', q, '--threads', '1']),
    startWorker(t, broker.url, ['--queue', q, '--threads', '1']),
  ]);
  const compute = await caller(t, q);
  const outcomes: { ok: boolean; code?: string; waitedMs: number; during: boolean }[] = [];
  let freezing = false;
  let running = true;
  const load = Promise.all(
    Array.from({ length: 32 }, async () => {
      while (running) {
        const started = performance.now();
        try {
          await compute.call('spin', { ms: 5 }, { deadlineMs: 8000, idempotent: true });
          // Counted by when it ended: the calls the frozen service held when it froze count too.
          outcomes.push({ ok: true, waitedMs: performance.now() - started, during: freezing });
        } catch (error) {
          outcomes.push({ ok: false, code: codeOf(error), waitedMs: performance.now() - started, during: freezing });
        }
      }
    }),
  );
  await waitUntil(() => outcomes.length >= 50, 'both services answer');
  frozen.kill('SIGSTOP');
  freezing = true;
  // Long enough for calls held by the frozen service to pass their hedge and their deadline, many times over.
  await waitUntil(() => outcomes.filter((o) => o.during).length >= 1000, '1000 calls made during the freeze', 120_000);
  frozen.kill('SIGCONT');
  running = false;
  await load;
  const during = outcomes.filter((o) => o.during);
  const answered = during.filter((o) => o.ok).length;
  const longest = Math.max(...during.map((o) => o.waitedMs));
  t.diagnostic(
    `during the freeze: ${answered} of ${during.length} answered (${((answered / during.length) * 100).toFixed(1)}%), longest wait ${longest.toFixed(0)} ms; failures: ${JSON.stringify(during.filter((o) => !o.ok).map((o) => o.code))}`,
  );
  // Without the levers, the calls the frozen service held waited their whole deadline and failed (13 of 1 032 in one
  // run, each 8 s): with them, each is answered by the other service after its hedge.
  assert.ok(answered / during.length >= 0.9, `${answered} of ${during.length} answered during the freeze`);
  assert.deepEqual(
    during.filter((o) => !o.ok).map((o) => o.code),
    [],
    'no call waited out its deadline',
  );
});

test("a compute host whose clock runs 15 s ahead runs the tasks (the time left crosses the wire, not the caller's clock)", async (t) => {
  const q = queue();
  const skewed = await startWorker(t, broker.url, ['--queue', q, '--threads', '1'], COMPUTE_TASKS, {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${new URL('../fixtures/clock-ahead.ts', import.meta.url).pathname}`,
    CLOCK_AHEAD_MS: '15000',
  });
  const compute = await caller(t, q);
  for (let i = 0; i < 10; i++) assert.equal(await compute.call('echo', i, { deadlineMs: 5000 }), i);
  await waitUntil(() => /the clocks disagree/.test(skewed.stderr()), 'the skew is logged');
});

test('hostile replies fail their own call, never the caller: unknown codes, a message not a string, not JSON', async (t) => {
  const q = queue();
  const compute = await caller(t, q, { confirm: false });
  // A rogue "service" on the queue that answers with what it likes.
  const connection = await connect(broker.url);
  t.after(() => connection.close());
  const channel = await connection.createChannel();
  const replies = [
    { ok: false, code: 'NS_ERR_FROM_A_NEWER_VERSION', message: 'new' },
    { ok: false, code: 'NS_ERR_COMPUTE_TIMEOUT', message: { not: 'a string' } },
    'not json {',
    { ok: 'yes' },
    { ok: false, code: 'constructor', message: 'proto' },
  ];
  const ids: string[] = [];
  let next = 0;
  await channel.consume(q, (message: ConsumeMessage | null) => {
    if (message === null) return;
    const reply = replies[next++ % replies.length];
    ids.push(String(message.properties.correlationId));
    channel.sendToQueue(
      message.properties.replyTo as string,
      Buffer.from(typeof reply === 'string' ? reply : JSON.stringify(reply)),
      { correlationId: message.properties.correlationId },
    );
    channel.ack(message);
  });
  const outcomes = [];
  for (let i = 0; i < replies.length; i++)
    outcomes.push(await compute.call('echo', i, { deadlineMs: 10_000 }).then(() => 'ok', codeOf));
  assert.deepEqual(outcomes, [
    'NS_ERR_COMPUTE_FAILED',
    'NS_ERR_COMPUTE_TIMEOUT',
    'NS_ERR_COMPUTE_FAILED',
    'NS_ERR_COMPUTE_FAILED',
    'NS_ERR_COMPUTE_FAILED',
  ]);
  // Still serving; correlation ids are random, so one seen does not give the next.
  assert.equal(compute.stats().queued, 0);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(ids).size, ids.length);
});

test('hostile tasks: prototype names never run, unknown names share one metrics label, huge deadlines and a foreign reply_to are contained', async (t) => {
  const q = queue();
  const service = await startAmqpService({ url: broker.url, tasks: COMPUTE_TASKS, queue: q, threads: 1 });
  t.after(() => service.stop());
  const compute = await caller(t, q);
  for (const name of ['constructor', 'toString', '__proto__', 'x'.repeat(100_000)])
    assert.equal(await compute.call(name, null).then(() => 'ran', codeOf), 'NS_ERR_COMPUTE_FAILED', name.slice(0, 20));
  for (let i = 0; i < 200; i++) await compute.call(`junk-${i}`, null).catch(() => {});
  const metrics = await service.registry.getMetricsAsJSON();
  const labels = new Set(
    metrics.find((m) => m.name === 'nodescale_compute_tasks_total')!.values.map((v) => String(v.labels.task)),
  );
  assert.deepEqual([...labels], ['(unknown)']);
  // Raw messages: a deadline far past what a timer holds, beside honest tasks; a reply address that is a queue.
  const connection = await connect(broker.url);
  t.after(() => connection.close());
  const channel = await connection.createChannel();
  const victim = `${q}.victim`;
  await channel.assertQueue(victim, { durable: false, autoDelete: true });
  const publish = (headers: object, replyTo: string, input: unknown) =>
    channel.sendToQueue(q, Buffer.from(JSON.stringify({ task: 'echo', input })), {
      headers,
      replyTo,
      correlationId: 'x',
    });
  publish({ 'x-nodescale-remaining-ms': 2 ** 40, 'x-nodescale-deadline': 2 ** 60 }, victim, 'huge');
  for (let i = 0; i < 8; i++) assert.equal(await compute.call('echo', i), i, 'honest tasks beside it are answered');
  await waitUntil(() => service.stats().completed >= 9, 'the task with a huge deadline ran');
  const stolen = await channel.get(victim);
  assert.equal(stolen, false, 'nothing was published into the queue that reply_to named');
  assert.ok(service.stats().expired === 0, 'no honest task expired');
});

test("the private broker is private to this machine's other users: loopback only, a 0700 directory, no guest", async () => {
  assert.equal(statSync(broker.dir).mode & 0o777, 0o700);
  assert.doesNotMatch(broker.url, /guest/);
  await assert.rejects(connect(broker.url.replace(/\/\/[^@]+@/, '//guest:guest@')), /ACCESS_REFUSED|403/);
  // Every port of the node (AMQP, Erlang distribution) and of epmd listens on loopback.
  const listening = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(`pid=${broker.pid()},`) || line.includes('"epmd"'));
  assert.ok(listening.length >= 3, listening.join('\n'));
  for (const line of listening) assert.match(line.split(/\s+/)[3]!, /^(127\.0\.0\.1|\[::1\]):\d+$/, line);
});
