import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { corpus } from '../../src/corpus/generate.ts';
import { extractTags, pageText } from '../../src/tagger/extract.ts';

const TOMATOES = readFileSync(new URL('../fixtures/pages/tomatoes.html', import.meta.url), 'utf8');

test('a hand-written page: its topic nouns and repeated phrases, plurals merged, names and boilerplate skipped', () => {
  const tags = extractTags(TOMATOES, 'https://example.org/tomatoes');
  assert.deepEqual(tags, [
    'balcony',
    'balcony garden',
    'cage',
    'compost',
    'container',
    'disease',
    'fertilizer',
    'fruit',
    'plant',
    'root',
    'small container',
    'tomato',
  ]);
  // The rules, one by one.
  assert.ok(tags.includes('tomato') && !tags.includes('tomatoes'), 'plural merged into the singular');
  for (const name of ['maria', 'rossi', 'milan'])
    assert.ok(!tags.some((t) => t.includes(name)), `capitalised ${name} skipped`);
  for (const boilerplate of ['newsletter', 'privacy', 'cookie', 'login'])
    assert.ok(!tags.some((t) => t.includes(boilerplate)), `${boilerplate}: navigation and footer skipped`);
  assert.ok(tags.includes('balcony garden'), 'the meta keywords seed the tags');
  assert.deepEqual(tags, [...new Set(tags)].sort(), 'sorted and unique');
  assert.ok(tags.every((t) => t === t.toLowerCase()));
});

test('readable text: title, description and keywords from the head, the article without its surroundings', () => {
  const text = pageText(TOMATOES, 'https://example.org/tomatoes');
  assert.equal(text.title, 'Growing tomatoes on a balcony');
  assert.equal(text.description, 'How to grow tomatoes in small containers.');
  assert.deepEqual(text.keywords, ['tomatoes', 'balcony garden']);
  assert.match(text.body, /^Tomatoes grow well/);
  assert.doesNotMatch(text.body, /Subscribe|Copyright/);
});

test('the corpus: at least 50 distinct pages, the same on every run, tagged with their topic', () => {
  const pages = corpus();
  assert.ok(pages.length >= 50);
  assert.equal(new Set(pages.map((p) => p.path)).size, pages.length);
  assert.equal(new Set(pages.map((p) => p.html)).size, pages.length, 'no two pages alike');
  const astronomy = pages.find((p) => p.path === '/articles/astronomy-1.html')!;
  assert.deepEqual(extractTags(astronomy.html, 'http://corpus/'), [
    'astronomy',
    'bright meteor',
    'comet',
    'distant meteor',
    'distant star',
    'faint telescope',
    'galaxy',
    'meteor',
    'nebula',
    'night sky',
    'observatory',
    'planet',
    'star',
    'telescope',
    'time',
  ]);
  const networking = pages.find((p) => p.path === '/articles/networking-3.html')!;
  const tags = extractTags(networking.html, 'http://corpus/');
  for (const expected of ['latency', 'packet', 'packet loss', 'firewall', 'router'])
    assert.ok(tags.includes(expected), `${expected} in ${tags}`);
  // Deterministic: the same page, the same tags.
  assert.deepEqual(extractTags(networking.html, 'http://corpus/'), tags);
});

test('pages that are not articles still give an answer, never a crash', () => {
  assert.deepEqual(extractTags('', 'http://x/'), []);
  assert.deepEqual(extractTags('<html><body><p>', 'http://x/'), []);
  assert.ok(Array.isArray(extractTags('<<<>>> not html at all & < > " \u0000', 'http://x/')));
  const bare = extractTags(
    '<p>Compilers turn source code into machine code. Good compilers optimise the code.</p>',
    'http://x/',
  );
  assert.ok(bare.includes('compiler') && bare.includes('code'), `${bare}`);
});
