import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { secretUrlFlag } from '../../src/cli/args.ts';
import { parseComputeWorkerArgs } from '../../src/cli/compute-worker.ts';
import { tempDir } from '../helpers/temp.ts';

test('a URL with a password comes from its flag, else its file, else the environment; never two of flag and file', (t) => {
  const dir = tempDir(t, 'ns-secret-');
  const file = path.join(dir, 'broker');
  writeFileSync(file, 'amqp://app:from-file@broker:5672\n');
  chmodSync(file, 0o600);
  const env = { NODESCALE_BROKER_URL: 'amqp://app:from-env@broker' };
  assert.equal(secretUrlFlag({ broker: 'amqp://flag' }, 'broker', env), 'amqp://flag');
  assert.equal(secretUrlFlag({ 'broker-file': file }, 'broker', env), 'amqp://app:from-file@broker:5672');
  assert.equal(secretUrlFlag({}, 'broker', env), 'amqp://app:from-env@broker');
  // A cluster's nodes, one a line (comments and blank lines skipped): the list the flag takes, comma-separated.
  const nodes = path.join(dir, 'nodes');
  writeFileSync(nodes, '# the cluster\namqp://app:p@b1:5672\n\n  amqp://app:p@b2:5672  \n', { mode: 0o600 });
  assert.equal(secretUrlFlag({ 'broker-file': nodes }, 'broker', env), 'amqp://app:p@b1:5672,amqp://app:p@b2:5672');
  assert.equal(secretUrlFlag({}, 'store', { NODESCALE_STORE_URL: 'redis://:p@cache' }), 'redis://:p@cache');
  assert.equal(secretUrlFlag({}, 'broker', {}), undefined);
  const usage = (e: unknown) => (e as { code?: string }).code === 'NS_ERR_USAGE';
  assert.throws(() => secretUrlFlag({ broker: 'amqp://x', 'broker-file': file }, 'broker', env), usage);
  assert.throws(() => secretUrlFlag({ 'broker-file': path.join(dir, 'missing') }, 'broker', env), usage);
  writeFileSync(file, '\n');
  assert.throws(() => secretUrlFlag({ 'broker-file': file }, 'broker', env), usage);
  // What the commands take: compute-worker from the environment alone.
  const saved = process.env.NODESCALE_BROKER_URL;
  process.env.NODESCALE_BROKER_URL = 'amqp://u:p@127.0.0.1:5672';
  t.after(() =>
    saved === undefined ? delete process.env.NODESCALE_BROKER_URL : (process.env.NODESCALE_BROKER_URL = saved),
  );
  assert.equal(parseComputeWorkerArgs(['tagger']).url, 'amqp://u:p@127.0.0.1:5672');
});
