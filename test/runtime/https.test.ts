import assert from 'node:assert/strict';
import https from 'node:https';
import { test } from 'node:test';
import { protect } from 'nodescale/runtime';

test('protect() takes an https server too', () => {
  const server = https.createServer({}, () => {});
  const runtime = protect(server, { shutdown: false, postMortem: false, logger: () => {} });
  assert.equal(runtime.readiness, 'starting');
  runtime.close();
});
