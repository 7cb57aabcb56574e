import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { writeCrashBundle } from '../../src/runtime/post-mortem.ts';
import { resolveRuntimeOptions } from '../../src/runtime/options.ts';
import { tempDir } from '../helpers/temp.ts';

test('writing a crash bundle removes the oldest beyond postMortem.keep, and nothing that is not a bundle', (t) => {
  const dir = tempDir(t, 'ns-bundles-');
  for (const name of [
    'crash-2026-01-01T00-00-00-000Z-1',
    'crash-2026-01-02T00-00-00-000Z-2',
    'crash-2026-01-03T00-00-00-000Z-3',
  ])
    mkdirSync(path.join(dir, name));
  mkdirSync(path.join(dir, 'notes'));
  const options = resolveRuntimeOptions({ postMortem: { dir, keep: 2 } }).postMortem!;
  const written = writeCrashBundle(options, new Error('boom'), 'uncaughtException', []);
  assert.deepEqual(
    readdirSync(dir).sort(),
    ['crash-2026-01-03T00-00-00-000Z-3', path.basename(written), 'notes'].sort(),
  );
  assert.equal(resolveRuntimeOptions({}).postMortem!.keep, 20, 'the default keeps 20');
  assert.throws(() => resolveRuntimeOptions({ postMortem: { keep: -1 } }), /postMortem\.keep/);
});
