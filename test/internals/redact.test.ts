import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { redactArgv, redactedReport, redactUrl } from '../../src/redact.ts';

test("the report's worker-thread sections are redacted too: environment values and command lines", async (t) => {
  process.env.NS_TEST_THREAD_SECRET = 'amqp://u:thread-do-not-leak@broker';
  t.after(() => delete process.env.NS_TEST_THREAD_SECRET);
  const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
  t.after(() => worker.terminate());
  await new Promise((resolve) => worker.once('online', resolve));
  const report = redactedReport() as { workers: { environmentVariables: Record<string, string> }[] };
  assert.ok(report.workers.length >= 1, 'the report has a section for the thread');
  assert.equal(report.workers[0]!.environmentVariables.NS_TEST_THREAD_SECRET, '[redacted]');
  assert.doesNotMatch(JSON.stringify(report), /do-not-leak/);
});

test('a password with a raw @ or / in it is redacted whole; a token alone too; the host stays', () => {
  assert.equal(redactUrl('amqp://app:p@ss/w@rd@broker:5672/vh'), 'amqp://app:***@broker:5672/vh');
  assert.equal(redactUrl('redis://:a/b@c@cache:6379/0'), 'redis://:***@cache:6379/0');
  assert.equal(redactUrl('https://ghp_token@github.com/x'), 'https://***@github.com/x');
  assert.equal(redactUrl('amqp://broker:5672'), 'amqp://broker:5672');
  assert.equal(redactUrl('not a url'), 'not a url');
  assert.deepEqual(redactArgv(['--broker', 'amqp://u:x@y/z@h/vh', 'redis://h:1']), [
    '--broker',
    'amqp://u:[redacted]@h/vh',
    'redis://h:1',
  ]);
});
