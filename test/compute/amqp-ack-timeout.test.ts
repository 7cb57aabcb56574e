/**
 * The broker's consumer acknowledgement timeout, hit for real (rabbitmq-server checks it about once a minute, so this
 * test takes a minute): the broker closes the service's channel, and the service must not be left stuck — users of
 * other Node clients report exactly that (node-rabbitmq-client#33). It reconnects, the task is redelivered, and new
 * calls are answered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAmqpService } from '../../src/compute/amqp-service.ts';
import { createCompute } from '../../src/compute/compute.ts';
import { startRabbitMq } from '../../src/servers/rabbitmq.ts';
import { COMPUTE_TASKS } from '../helpers/compute-worker.ts';
import { waitUntil } from '../helpers/wait.ts';

test('a service whose channel the broker closes for an acknowledgement timeout reconnects and keeps serving', async (t) => {
  const broker = await startRabbitMq({ config: ['consumer_timeout = 1000'] });
  t.after(() => broker.stop());
  const logs: string[] = [];
  const service = await startAmqpService({
    url: broker.url,
    tasks: COMPUTE_TASKS,
    queue: 'ack-timeout',
    threads: 2,
    prefetch: 2,
    log: (_level, message) => logs.push(message),
  });
  t.after(() => service.stop());
  const compute = await createCompute({ transport: 'amqp', url: broker.url, queue: 'ack-timeout' });
  t.after(() => compute.close());
  // Held far past the 1 s timeout: the broker closes the channel at its next check.
  const slow = compute.call('sleep', { ms: 90_000 }, { deadlineMs: 100_000 }).catch((error: unknown) => error);
  await waitUntil(() => logs.some((m) => /lost the broker/.test(m)), 'the broker closed the channel', 150_000);
  await waitUntil(() => service.consuming, 'the service consumes again', 30_000);
  assert.equal(await compute.call('echo', 'after the timeout', { deadlineMs: 30_000 }), 'after the timeout');
  assert.ok(service.stats().redelivered >= 1, 'the held task came back');
  await compute.call('echo', 'and again');
  void slow;
});
