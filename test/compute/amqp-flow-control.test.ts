/**
 * Broker flow control, for real: a RabbitMQ node started over its memory watermark raises its memory alarm and blocks
 * publishers (connection.blocked). A caller must not queue calls without bound behind it: once blocked, calls are
 * refused at once; the one already sent fails then too (the broker blocks the services' replies: it would hang to
 * its deadline), with the retryable NS_ERR_COMPUTE_UNAVAILABLE.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCompute } from '../../src/compute/compute.ts';
import { startRabbitMq } from '../../src/servers/rabbitmq.ts';

test('a broker that blocks publishers (memory alarm): calls are refused at once with NS_ERR_COMPUTE_QUEUE_FULL', async (t) => {
  const broker = await startRabbitMq({ config: ['vm_memory_high_watermark.absolute = 1MB'] });
  t.after(() => broker.stop());
  const compute = await createCompute({ transport: 'amqp', url: broker.url, queue: 'blocked' });
  t.after(() => compute.close());
  const code = (error: unknown) => (error as { code?: string }).code;
  // The first publish is what the broker answers with connection.blocked; that call fails then, long before its deadline.
  const first = compute.call('echo', 1, { deadlineMs: 120_000 }).catch((error: unknown) => error);
  let refused: unknown = null;
  const started = Date.now();
  while (refused === null && Date.now() - started < 10_000) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    refused = await compute.call('echo', 2, { deadlineMs: 3000 }).then(
      () => null,
      (error: unknown) => (code(error) === 'NS_ERR_COMPUTE_QUEUE_FULL' ? error : null),
    );
  }
  assert.ok(refused !== null, 'refused while the broker blocks publishers');
  assert.match((refused as Error).message, /flow control/);
  const failed = (await first) as { code?: string; retryable?: boolean; message: string };
  assert.equal(failed.code, 'NS_ERR_COMPUTE_UNAVAILABLE', failed.message);
  assert.equal(failed.retryable, true);
  assert.match(failed.message, /blocking publishers/);
});
