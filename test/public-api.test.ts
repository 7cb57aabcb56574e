import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as api from 'nodescale';

test('the package entry point exports the public API by its package name', () => {
  for (const name of ['runBench', 'runSweep', 'findKnee', 'fitUsl', 'compareServers', 'startHello', 'NodescaleError', 'ERROR_CODES']) {
    assert.ok(name in api, name);
  }
  assert.deepEqual([...api.HELLO_KINDS], ['tcp', 'http', 'fastify', 'express']);
});
