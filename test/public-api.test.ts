import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as api from 'nodescale';
import * as compute from 'nodescale/compute';
import * as runtime from 'nodescale/runtime';
import * as fastify from 'nodescale/runtime/fastify';

/**
 * Each entry exports exactly this: a new export is added here on purpose (and documented), and nothing internal
 * leaks by a stray `export *`.
 */
const PUBLIC = {
  nodescale: [
    ...[
      'AdminClient',
      'BENCH_DEFAULTS',
      'COMPARE_DEFAULTS',
      'ERROR_CODES',
      'HELLO_KINDS',
      'NodescaleError',
      'SWEEP_DEFAULTS',
      'compareServers',
      'evaluateThresholds',
      'findKnee',
    ],
    ...[
      'fitUsl',
      'geometricLevels',
      'isNodescaleError',
      'mergeResults',
      'parseThreshold',
      'powerKnee',
      'renderFlameGraph',
      'runBench',
      'runSweep',
      'startHello',
      'uslThroughput',
    ],
  ],
  'nodescale/runtime': [
    ...[
      'AdminServer',
      'CHANNELS',
      'ROUTE',
      'RUNTIME_DEFAULTS',
      'Runtime',
      'createRuntime',
      'expressRoutes',
      'jsonLogger',
      'protect',
    ],
    ...['redactedReport', 'writeHeapSnapshot'],
  ],
  // Its own entry: only a project with fastify (whose types its declarations use) imports it.
  'nodescale/runtime/fastify': ['nodescaleFastify'],
  'nodescale/compute': ['COMPUTE_DEFAULTS', 'TRANSPORT_NAMES', 'createCompute', 'resolveComputeOptions'],
};

test('each package entry exports its public API by the package name, and nothing else', () => {
  const entries = {
    nodescale: api,
    'nodescale/runtime': runtime,
    'nodescale/runtime/fastify': fastify,
    'nodescale/compute': compute,
  };
  for (const [name, module] of Object.entries(entries))
    assert.deepEqual(Object.keys(module).sort(), [...PUBLIC[name as keyof typeof PUBLIC]].sort(), name);
  assert.deepEqual([...api.HELLO_KINDS], ['tcp', 'http', 'fastify', 'express']);
  assert.equal(typeof runtime.protect, 'function');
  assert.equal(typeof compute.createCompute, 'function');
});
