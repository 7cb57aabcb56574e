/**
 * The corpus: article pages written for nodescale, generated from our own templates and word lists (no copied text),
 * the same on every machine (a seeded PRNG). Ten topics, six articles each; every page has a title, a meta
 * description and keywords, navigation and a footer around the article (boilerplate the extractor must ignore),
 * and names of people (capitalised words it must skip).
 */
import { mulberry32 } from '../random.ts';

export interface CorpusPage {
  /** URL path: /articles/<topic>-<n>.html */
  path: string;
  topic: string;
  title: string;
  html: string;
}

interface Topic {
  name: string;
  /** Plural forms are made by the templates: the extractor must merge them. */
  nouns: string[];
  adjectives: string[];
  keywords: string[];
  people: string[];
}

const TOPICS: Topic[] = [
  {
    name: 'astronomy',
    nouns: ['telescope', 'galaxy', 'planet', 'star', 'orbit', 'comet', 'nebula', 'observatory', 'eclipse', 'meteor'],
    adjectives: ['distant', 'bright', 'faint', 'spiral', 'rocky', 'frozen'],
    keywords: ['astronomy', 'telescope', 'night sky'],
    people: ['Vera Lindqvist', 'Tomas Oyelaran'],
  },
  {
    name: 'gardening',
    nouns: [
      'tomato',
      'seedling',
      'compost',
      'soil',
      'root',
      'greenhouse',
      'fertiliser',
      'harvest',
      'leaf',
      'container',
    ],
    adjectives: ['organic', 'sunny', 'raised', 'moist', 'hardy', 'fresh'],
    keywords: ['gardening', 'compost', 'vegetable garden'],
    people: ['Maria Rossi', 'Ade Kovac'],
  },
  {
    name: 'databases',
    nouns: ['index', 'query', 'table', 'transaction', 'replica', 'schema', 'column', 'cursor', 'snapshot', 'partition'],
    adjectives: ['relational', 'distributed', 'slow', 'primary', 'consistent', 'durable'],
    keywords: ['database', 'query', 'index tuning'],
    people: ['Ingrid Nakamura', 'Paolo Mensah'],
  },
  {
    name: 'cycling',
    nouns: ['bicycle', 'saddle', 'chain', 'gear', 'tyre', 'climb', 'route', 'helmet', 'wheel', 'frame'],
    adjectives: ['steep', 'light', 'long', 'narrow', 'muddy', 'steel'],
    keywords: ['cycling', 'bicycle', 'road bike'],
    people: ['Lena Okafor', 'Ruben Aalto'],
  },
  {
    name: 'cooking',
    nouns: ['recipe', 'sauce', 'onion', 'oven', 'dough', 'spice', 'pan', 'broth', 'knife', 'flavour'],
    adjectives: ['crisp', 'golden', 'savoury', 'slow', 'sharp', 'fragrant'],
    keywords: ['cooking', 'recipe', 'home kitchen'],
    people: ['Chiara Duval', 'Kwame Berg'],
  },
  {
    name: 'photography',
    nouns: ['camera', 'lens', 'shutter', 'exposure', 'aperture', 'portrait', 'tripod', 'sensor', 'shadow', 'frame'],
    adjectives: ['wide', 'sharp', 'natural', 'soft', 'manual', 'low'],
    keywords: ['photography', 'camera', 'natural light'],
    people: ['Noor Haddad', 'Felix Brandt'],
  },
  {
    name: 'climate',
    nouns: [
      'glacier',
      'emission',
      'drought',
      'forest',
      'ocean',
      'temperature',
      'carbon',
      'rainfall',
      'coastline',
      'ice',
    ],
    adjectives: ['rising', 'warm', 'extreme', 'melting', 'coastal', 'arid'],
    keywords: ['climate', 'carbon', 'sea level'],
    people: ['Astrid Moreau', 'Jabari Lund'],
  },
  {
    name: 'music',
    nouns: ['melody', 'rhythm', 'guitar', 'chord', 'drum', 'concert', 'album', 'lyric', 'tempo', 'harmony'],
    adjectives: ['acoustic', 'loud', 'gentle', 'minor', 'live', 'electric'],
    keywords: ['music', 'guitar', 'live concert'],
    people: ['Dalia Fischer', 'Omar Vesely'],
  },
  {
    name: 'networking',
    nouns: [
      'packet',
      'router',
      'latency',
      'socket',
      'protocol',
      'bandwidth',
      'firewall',
      'switch',
      'cable',
      'handshake',
    ],
    adjectives: ['secure', 'local', 'high', 'encrypted', 'wireless', 'slow'],
    keywords: ['networking', 'latency', 'packet loss'],
    people: ['Hana Petrov', 'Luis Achebe'],
  },
  {
    name: 'beekeeping',
    nouns: ['hive', 'honey', 'queen', 'colony', 'pollen', 'swarm', 'frame', 'nectar', 'flower', 'smoker'],
    adjectives: ['healthy', 'calm', 'wild', 'busy', 'sweet', 'strong'],
    keywords: ['beekeeping', 'honey', 'bee colony'],
    people: ['Greta Sandoval', 'Yusuf Holm'],
  },
];

const PAGES_PER_TOPIC = 6;

const plural = (noun: string) =>
  /(s|x|ch|sh)$/.test(noun) ? `${noun}es` : /[^aeiou]y$/.test(noun) ? `${noun.slice(0, -1)}ies` : `${noun}s`;
const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// {n} a noun, {ns} its plural, {a} an adjective, {n2}/{ns2} another noun, {p} a person.
const TEMPLATES = [
  'Most {ns} need a {a} {n2} first.',
  'A {a} {n} changes how the whole {n2} behaves.',
  '{p} says the {n} is what goes wrong first.',
  'When a {n} fails, look at the {ns2} before the {n}.',
  'The {a} {n} is easier to handle than it looks.',
  'Good {ns} and {a} {ns2} go together, according to {p}.',
  'Nobody agrees on the right {n}, but the {n2} clearly counts.',
  'Each {n} is different, and {a} {ns} differ most.',
  'We looked at the {n} three times and noted each {n2}.',
  'Start with one {a} {n}; add more {ns} only when it works.',
  'A {a} {n} that simply works is rare.',
  'The {ns2} around a {n} say more than we could.',
  'Keep the {n} close to the {n2}, and keep both {a}.',
  'Why do {a} {ns} outlast the {ns2}?',
];

const BOILERPLATE_NAV =
  '<nav><a href="/">Home</a> · <a href="/articles/">Articles</a> · <a href="/about">About us</a> · <a href="/subscribe">Subscribe to the newsletter</a> · <a href="/login">Log in</a></nav>';
const BOILERPLATE_FOOTER =
  '<footer><p>Copyright 2026 The Example Journal. All rights reserved.</p><p><a href="/privacy">Privacy policy</a> · <a href="/cookies">Cookie settings</a> · <a href="/contact">Contact</a></p></footer>';

function sentence(topic: Topic, random: () => number, focus: string[]): string {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  // Each article dwells on its focus nouns: what its tags should be.
  const noun = () => (random() < 0.7 ? pick(focus) : pick(topic.nouns));
  const n = noun();
  let n2 = noun();
  if (n2 === n) n2 = pick(topic.nouns.filter((x) => x !== n));
  return capitalise(
    pick(TEMPLATES)
      .replace(/\{ns\}/g, plural(n))
      .replace(/\{n\}/g, n)
      .replace(/\{ns2\}/g, plural(n2))
      .replace(/\{n2\}/g, n2)
      .replace(/\{a\}/g, pick(topic.adjectives))
      .replace(/\{p\}/g, pick(topic.people)),
  );
}

const pathOf = (topic: Topic, index: number) => `/articles/${topic.name}-${index + 1}.html`;

function article(topic: Topic, index: number): CorpusPage {
  const random = mulberry32(0x5eed + TOPICS.indexOf(topic) * 101 + index);
  const shuffled = [...topic.nouns].sort(() => random() - 0.5);
  const focus = shuffled.slice(0, 3);
  const adjective = topic.adjectives[index % topic.adjectives.length]!;
  const title = `${capitalise(adjective)} ${plural(focus[0]!)} and the ${focus[1]}: notes on ${topic.name}, part ${index + 1}`;
  const description = `What we learned about ${plural(focus[0]!)}, ${plural(focus[1]!)} and ${plural(focus[2]!)}.`;
  const paragraphs: string[] = [];
  const count = 8 + Math.floor(random() * 5);
  for (let p = 0; p < count; p++) {
    const sentences = Array.from({ length: 4 + Math.floor(random() * 3) }, () => sentence(topic, random, focus));
    paragraphs.push(`<p>${escape(sentences.join(' '))}</p>`);
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="description" content="${escape(description)}">
<meta name="keywords" content="${escape(topic.keywords.join(', '))}">
</head><body>${BOILERPLATE_NAV}
<main><article><h1>${escape(title)}</h1><p class="byline">By ${escape(topic.people[index % 2]!)}</p>
${paragraphs.join('\n')}
</article></main>
<aside><h2>Popular</h2><ul><li><a href="/">Ten things about everything</a></li><li><a href="/">Our newsletter</a></li></ul></aside>
${BOILERPLATE_FOOTER}</body></html>
`;
  return { path: pathOf(topic, index), topic: topic.name, title, html };
}

/** The URL paths of the corpus, in corpus() order, without generating the pages. */
export function corpusPaths(): string[] {
  return TOPICS.flatMap((topic) => Array.from({ length: PAGES_PER_TOPIC }, (_, i) => pathOf(topic, i)));
}

let cache: CorpusPage[] | null = null;

/** Every page of the corpus (60), in a fixed order. */
export function corpus(): CorpusPage[] {
  cache ??= TOPICS.flatMap((topic) => Array.from({ length: PAGES_PER_TOPIC }, (_, i) => article(topic, i)));
  return cache;
}
