import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = new URL('../../src/', import.meta.url).pathname;

/**
 * The area of a source file: its folder under src/, or '.' for the shared modules at the top. The package's entries
 * (the index.ts files package.json exports: `nodescale`, `nodescale/runtime`, `nodescale/compute`) re-export the
 * areas: they are the top of the graph, an area of their own that nothing imports.
 */
const ENTRIES = Object.values(
  (
    JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      exports: Record<string, { 'nodescale-source'?: string }>;
    }
  ).exports,
)
  .map((target) => target['nodescale-source']?.replace(/^\.\/src\//, ''))
  .filter((file) => file?.endsWith('index.ts'));
const areaOf = (file: string) => (ENTRIES.includes(file) ? 'entry' : file.includes('/') ? file.split('/')[0]! : '.');

/** area → the areas its files import (type-only imports included: a cycle of types is a cycle of design). */
function areaGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const file of files) {
    const from = areaOf(file);
    const edges = graph.get(from) ?? graph.set(from, new Set()).get(from)!;
    const text = readFileSync(path.join(SRC, file), 'utf8');
    for (const [, spec] of text.matchAll(/^(?:import|export)[^'"]*?from '(\.{1,2}\/[^']+)'/gm)) {
      const target = path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), spec!));
      const to = areaOf(target);
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

test('no import cycle between areas: each folder of src/ depends on others in one direction only', () => {
  const graph = areaGraph();
  const cycles: string[] = [];
  const visit = (area: string, trail: string[]) => {
    if (trail.includes(area)) return void cycles.push([...trail.slice(trail.indexOf(area)), area].join(' → '));
    for (const next of graph.get(area) ?? []) visit(next, [...trail, area]);
  };
  for (const area of graph.keys()) visit(area, []);
  assert.deepEqual([...new Set(cycles)], []);
  // The shared modules at the top import no area: everything may import them.
  assert.deepEqual([...(graph.get('.') ?? [])], []);
  // The runtime and its admin console know each other only through contracts (admin/target.ts, admin-options.ts):
  // src/protect/ puts them together.
  assert.ok(!graph.get('runtime')!.has('admin'), 'runtime imports admin');
  assert.ok(!graph.get('admin')!.has('runtime'), 'admin imports runtime');
  // The supervisor's control socket and the admin console share src/socket/, not each other.
  assert.ok(!graph.get('supervisor')!.has('admin'), 'supervisor imports admin');
  // Nothing imports an entry.
  assert.deepEqual(
    [...graph].filter(([, to]) => to.has('entry')).map(([from]) => from),
    [],
  );
});

/** file → the files of src/ it imports (type-only included; with `dynamic`, `import('./x.ts')` too). */
function fileGraph({ dynamic = false } = {}): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(path.join(SRC, file), 'utf8');
    graph.set(
      file,
      [
        ...text.matchAll(/^(?:import|export)[^'"]*?from '(\.{1,2}\/[^']+)'/gm),
        ...(dynamic ? text.matchAll(/\bimport\('(\.{1,2}\/[^']+)'\)/g) : []),
      ].map(([, spec]) => path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), spec!))),
    );
  }
  return graph;
}

test('compute: the core knows no transport, and no file of the area imports itself round a circle', () => {
  const graph = fileGraph();
  // The core: the contract, the options every transport shares, and the service host. It reaches the transports
  // through the registry (transports.ts, which lists their definitions and options), and a transport's
  // implementation is loaded by its definition.
  const core = ['compute.ts', 'contract.ts', 'call.ts', 'option-checks.ts', 'service.ts'];
  const allowed = (target: string) =>
    !target.startsWith('compute/') || core.includes(target.slice(8)) || target === 'compute/transports.ts';
  for (const file of core) {
    const wrong = graph.get(`compute/${file}`)!.filter((target) => !allowed(target));
    assert.deepEqual(wrong, [], `compute/${file} imports a transport's implementation`);
  }
  // A module loaded on use (a transport's implementation, by its definition) counts: a circle through it is one.
  const withLoads = fileGraph({ dynamic: true });
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]) => {
    if (trail.includes(file)) return void cycles.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
    for (const next of withLoads.get(file) ?? []) if (next.startsWith('compute/')) visit(next, [...trail, file]);
  };
  for (const file of withLoads.keys()) if (file.startsWith('compute/')) visit(file, []);
  assert.deepEqual([...new Set(cycles)], []);
});
