import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type * as errors from '../src/errors.ts';
import { ERROR_CODES, httpStatus, isNodescaleError, NodescaleError } from '../src/errors.ts';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const rows = new Map([...doc.matchAll(/^\| `(NS_ERR_[A-Z_]+)` \| (\d|http \d{3}) \|/gm)].map((m) => [m[1]!, m[2]!]));

test('docs/errors.md lists every error code with its exit code or HTTP status, and no other', () => {
  assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CODES).sort());
  for (const [code, { kind }] of Object.entries(ERROR_CODES)) {
    const expected = { usage: '2', failure: '1', http: `http ${httpStatus(code as keyof typeof ERROR_CODES)}` }[kind];
    assert.equal(rows.get(code), expected, code);
  }
});

test('every code in the source is a registered one', async () => {
  const { readdirSync } = await import('node:fs');
  const files = readdirSync(new URL('../src', import.meta.url), { recursive: true, withFileTypes: true }).filter(
    (f) => f.isFile() && f.name.endsWith('.ts'),
  );
  for (const file of files) {
    const text = readFileSync(`${file.parentPath}/${file.name}`, 'utf8');
    for (const [code] of text.matchAll(/NS_ERR_[A-Z_]+/g))
      assert.ok(code in ERROR_CODES, `${file.name} uses unregistered ${code}`);
  }
});

test('NodescaleError carries code, kind, cause and retryable', () => {
  const cause = new Error('inner');
  const error = new NodescaleError('NS_ERR_INVALID_OPTION', 'connections must be an integer', { cause });
  assert.equal(error.code, 'NS_ERR_INVALID_OPTION');
  assert.equal(error.kind, 'usage');
  assert.equal(error.cause, cause);
  assert.equal(error.retryable, false);
  assert.ok(error instanceof Error);
});

test('an error code that reaches HTTP declares its status beside it; a server needs no table of its own', () => {
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    const status = (entry as { status?: number }).status;
    if (entry.kind === 'http')
      assert.ok(status !== undefined && status >= 400 && status < 600, `${code} declares an HTTP status`);
  }
  assert.equal(new NodescaleError('NS_ERR_FETCH_REFUSED', 'x').status, 403);
  assert.equal(new NodescaleError('NS_ERR_COMPUTE_QUEUE_FULL', 'x').status, 503);
  assert.equal(httpStatus('NS_ERR_OVERLOADED'), 503);
  assert.equal(new NodescaleError('NS_ERR_INTERNAL', 'x').status, 500, 'a code without one is a 500');
});

test('an error made by another copy of the module is a NodescaleError too (src/ and dist/ loaded together)', async () => {
  const copy = (await import(`../src/errors.ts?copy=${Date.now()}`)) as typeof errors;
  assert.notEqual(copy.NodescaleError, NodescaleError, 'two module instances');
  const theirs = new copy.NodescaleError('NS_ERR_COMPUTE_TIMEOUT', 'late', { retryable: true });
  assert.ok(theirs instanceof NodescaleError);
  assert.ok(isNodescaleError(theirs));
  assert.ok(new NodescaleError('NS_ERR_USAGE', 'x') instanceof copy.NodescaleError);
  for (const other of [new Error('x'), { code: 'NS_ERR_USAGE' }, { ...theirs }, null, 'NS_ERR_USAGE'])
    assert.equal(isNodescaleError(other), false, JSON.stringify(other));
});

test('whether a code is retryable is declared with it; a throw site may say otherwise', () => {
  const declared = Object.entries(ERROR_CODES)
    .filter(([, entry]) => (entry as { retryable?: boolean }).retryable === true)
    .map(([code]) => code);
  assert.deepEqual(declared.sort(), [
    'NS_ERR_COMPUTE_QUEUE_FULL',
    'NS_ERR_COMPUTE_TIMEOUT',
    'NS_ERR_COMPUTE_UNAVAILABLE',
    'NS_ERR_STORE_UNAVAILABLE',
  ]);
  assert.equal(new NodescaleError('NS_ERR_COMPUTE_TIMEOUT', 'x').retryable, true);
  assert.equal(new NodescaleError('NS_ERR_COMPUTE_FAILED', 'x').retryable, false);
  // A timeout a compute service reports: its task used its time there.
  assert.equal(new NodescaleError('NS_ERR_COMPUTE_TIMEOUT', 'x', { retryable: false }).retryable, false);
  // docs/errors.md says so of each.
  const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  for (const code of declared)
    assert.match(docs, new RegExp(`\\| \`${code}\` \\|[^\\n]*Retryable\\.`), `docs/errors.md: ${code} is retryable`);
});
