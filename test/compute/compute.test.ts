import assert from 'node:assert/strict';
import { threadId } from 'node:worker_threads';
import { test } from 'node:test';
import { startAmqpService } from '../../src/compute/amqp-service.ts';
import { startComputeService } from '../../src/compute/service.ts';
import { createCompute, resolveComputeOptions } from '../../src/compute/compute.ts';

const TASKS = new URL('../fixtures/compute-tasks.ts', import.meta.url);

const rejectsWith = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (error: { code?: string }) => error.code === code);

test("the pool runs tasks off the caller's thread; inline runs them on it", async (t) => {
  const pool = await createCompute({ tasks: TASKS, threads: 2 });
  t.after(() => pool.close());
  assert.deepEqual(await pool.call('echo', { a: [1, 2] }), { a: [1, 2] });
  assert.notEqual(await pool.call('thread', null), threadId);
  const inline = await createCompute({ transport: 'inline', tasks: TASKS });
  t.after(() => inline.close());
  assert.equal(await inline.call('thread', null), threadId);
  assert.equal(pool.stats().threads, 2);
  assert.equal(pool.stats().transport, 'pool');
});

test('a deadline cancels a running task; the pool replaces the thread and keeps serving', async (t) => {
  const pool = await createCompute({ tasks: TASKS, threads: 1 });
  t.after(() => pool.close());
  await rejectsWith(pool.call('spin', { ms: 5000 }, { deadlineMs: 100 }), 'NS_ERR_COMPUTE_TIMEOUT');
  assert.equal(await pool.call('echo', 'after'), 'after');
  // A caller's own cancellation too.
  const controller = new AbortController();
  const call = pool.call('spin', { ms: 5000 }, { signal: controller.signal });
  // Cancelled whether it is queued or running (a thread cannot say when it starts without a channel of its own).
  setTimeout(() => controller.abort(new Error('client went away')), 50);
  await assert.rejects(call, /cancelled: client went away/);
  assert.equal(await pool.call('echo', 'still'), 'still');
});

test('the pool runs tasks in the order they came, under a steady stream: none waits behind newer ones', async (t) => {
  // One thread, four calls in flight at all times, as a compute service holds its prefetch: with piscina's default
  // (a task it could not hand to a busy thread goes to the back of its queue) one call was passed over again and
  // again by newer ones, until its deadline (seen in the lab: 60 s for a 300 ms task).
  const pool = await createCompute({ tasks: TASKS, threads: 1 });
  t.after(() => pool.close());
  const finished: number[] = [];
  let next = 0;
  const caller = async () => {
    while (next < 60) {
      const id = next++;
      await pool.call('hold', { ms: 5, id });
      finished.push(id);
    }
  };
  await Promise.all(Array.from({ length: 4 }, caller));
  assert.deepEqual(
    finished,
    Array.from({ length: 60 }, (_, i) => i),
  );
});

test('a crashing thread fails only its own task: the tasks queued behind it run', async (t) => {
  const pool = await createCompute({ tasks: TASKS, threads: 1 });
  t.after(() => pool.close());
  const crash = pool.call('exit', null);
  const queued = [pool.call('echo', 1), pool.call('echo', 2), pool.call('echo', 3)];
  await rejectsWith(crash, 'NS_ERR_COMPUTE_FAILED');
  assert.deepEqual(await Promise.all(queued), [1, 2, 3]);
  await assert.rejects(pool.call('fail', null), /task fail failed: bad input for this task/);
  await rejectsWith(pool.call('nope', null), 'NS_ERR_COMPUTE_FAILED');
  assert.equal(await pool.call('echo', 'ok'), 'ok');
});

test('a full queue refuses at once; a closed pool refuses', async (t) => {
  const pool = await createCompute({ tasks: TASKS, threads: 1, maxQueue: 2 });
  t.after(() => pool.close());
  const running = pool.call('spin', { ms: 300 });
  const queued = [pool.call('echo', 'a'), pool.call('echo', 'b')];
  await rejectsWith(pool.call('echo', 'c'), 'NS_ERR_COMPUTE_QUEUE_FULL');
  assert.deepEqual(await Promise.all([running, ...queued]), [300, 'a', 'b']);
  await pool.close();
  await rejectsWith(pool.call('echo', 'late'), 'NS_ERR_COMPUTE_CLOSED');
});

test('inline: a call already past its deadline never starts', async (t) => {
  const inline = await createCompute({ transport: 'inline', tasks: TASKS });
  t.after(() => inline.close());
  const controller = new AbortController();
  controller.abort();
  await rejectsWith(inline.call('echo', 1, { signal: controller.signal }), 'NS_ERR_COMPUTE_FAILED');
  await rejectsWith(inline.call('fail', null), 'NS_ERR_COMPUTE_FAILED');
});

test('options are validated with the option named', () => {
  assert.throws(
    () => resolveComputeOptions({ tasks: TASKS, transport: 'carrier-pigeon' }),
    /transport must be inline, pool or amqp, got "carrier-pigeon"/,
  );
  assert.throws(() => resolveComputeOptions({ tasks: TASKS, threads: 0 }), /threads must be a whole number ≥ 1/);
  assert.throws(() => resolveComputeOptions({ tasks: '' }), /tasks must be/);
  // setTimeout turns a longer timer into 1 ms: a deadline that cannot be honoured is refused, not shortened.
  assert.throws(
    () => resolveComputeOptions({ tasks: TASKS, deadlineMs: 2 ** 31 }),
    /deadlineMs must be a deadline of at most 2147483647 ms/,
  );
  assert.throws(() => resolveComputeOptions({ tasks: TASKS, hedgeAfter: 0 }), /hedgeAfter must be a fraction/);
  assert.throws(
    () => resolveComputeOptions({ tasks: TASKS, queue: 'amq.x', transport: 'amqp', url: 'amqp://h' }),
    /not amq\./,
  );
});

test('a call whose deadline is over what a timer holds is refused, not timed out at once', async (t) => {
  const compute = await createCompute({ tasks: TASKS, threads: 1 });
  t.after(() => compute.close());
  await assert.rejects(compute.call('echo', 1, { deadlineMs: 2 ** 31 }), /deadlineMs must be a deadline of at most/);
  assert.equal(await compute.call('echo', 1, { deadlineMs: 2 ** 31 - 1 }), 1);
});

test('an option name that is a typo is refused with the nearest known one, by createCompute and startAmqpService', async () => {
  await assert.rejects(createCompute({ tasks: TASKS, treads: 4 } as never), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option treads; did you mean threads?',
  });
  await assert.rejects(startAmqpService({ url: 'amqp://127.0.0.1:1', tasks: TASKS, prefech: 8 } as never), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'unknown option prefech; did you mean prefetch?',
  });
});

test('an option of another transport is refused naming its transport; a transport without a service side has none', async () => {
  await assert.rejects(createCompute({ tasks: TASKS, queue: 'q' }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'queue is an option of the amqp transport, not of pool',
  });
  await assert.rejects(createCompute({ tasks: TASKS, transport: 'amqp', url: 'amqp://127.0.0.1:1', threads: 2 }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: 'threads is an option of the pool transport, not of amqp',
  });
  await assert.rejects(startComputeService('pool', { tasks: TASKS }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: "the pool transport runs tasks in the caller's process: it has no service side (amqp has)",
  });
  await assert.rejects(startComputeService('amqp', { tasks: TASKS, url: 'amqp://127.0.0.1:1', confirm: true }), {
    code: 'NS_ERR_INVALID_OPTION',
    message: /^unknown option confirm/,
  });
});
