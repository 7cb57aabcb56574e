/**
 * Topic tags of an HTML page: the talk's CPU-bound step, deterministic and pure (html in, tags out).
 *
 * 1. Readable text: the title, the meta description and the article body (@mozilla/readability on a linkedom DOM,
 *    which drops navigation, footers and scripts; the whole body's text when Readability finds no article).
 * 2. Part-of-speech tagging and lemmas: wink-nlp with its English model.
 * 3. The talk's counting: nouns and adjective+noun phrases, skipping stop words, short and non-alphabetic tokens
 *    and capitalised words (names: they say who, not what), plural forms merged into the singular; the page's own
 *    meta keywords seed the counts.
 * 4. The top single words and the repeated phrases, lower-case, sorted, unique.
 */
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import winkNLP, { type ItemSentence, type ItemToken, type ItsFunction } from 'wink-nlp';
import model from 'wink-eng-lite-web-model';

export interface ExtractOptions {
  /** How many single-word tags at most. Default 10. */
  maxWords?: number;
  /** How many multi-word phrases at most. Default 5. */
  maxPhrases?: number;
  /** How often a phrase must occur to be a tag. Default 2. */
  minPhraseCount?: number;
  /** How much a meta keyword adds to its word's count. Default 3. */
  keywordWeight?: number;
}

export const EXTRACT_DEFAULTS = Object.freeze({
  maxWords: 10,
  maxPhrases: 5,
  minPhraseCount: 2,
  keywordWeight: 3,
} satisfies Required<ExtractOptions>);

export interface PageText {
  title: string;
  description: string;
  keywords: string[];
  body: string;
}

// Loading the model takes a few hundred ms and some 50 MB: once per process (or worker thread), on first use.
let nlp: ReturnType<typeof winkNLP> | null = null;
const getNlp = () => (nlp ??= winkNLP(model, ['sbd', 'pos']));

const WORD = /^[a-z][a-z-]*[a-z]$/;

/** The readable parts of a page. */
export function pageText(html: string, url: string): PageText {
  // linkedom wants a whole document: a fragment (or nothing) is wrapped in one.
  const { document } = parseHTML(
    /<html[\s>]/i.test(html) ? html : `<!doctype html><html><head></head><body>${html}</body></html>`,
  );
  const meta = (name: string): string =>
    document.querySelector(`meta[name="${name}" i]`)?.getAttribute('content')?.trim() ?? '';
  const title = document.querySelector('title')?.textContent?.trim() ?? '';
  const description = meta('description');
  const keywords = meta('keywords')
    .split(',')
    .map((k: string) => k.trim().toLowerCase())
    .filter((k: string) => k.length > 0 && k.length <= 60);
  // Readability needs a base URL for its link fixing; linkedom documents have none.
  Object.defineProperty(document, 'baseURI', { value: url, configurable: true });
  let body = '';
  try {
    body =
      new Readability(document, {
        charThreshold: 200,
      }).parse()?.textContent ?? '';
  } catch {
    // Readability gives up on some malformed documents: the body's text is the fallback below.
  }
  if (body.trim() === '') body = document.body?.textContent ?? document.documentElement?.textContent ?? '';
  return { title, description, keywords, body: body.replace(/\s+/g, ' ').trim() };
}

/** Merges plural forms into their singular, when the singular occurs too (or the lemmatiser found it). */
function singular(word: string, known: Map<string, number>): string {
  if (word.endsWith('ies') && known.has(`${word.slice(0, -3)}y`)) return `${word.slice(0, -3)}y`;
  if (word.endsWith('es') && known.has(word.slice(0, -2))) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss') && known.has(word.slice(0, -1))) return word.slice(0, -1);
  return word;
}

function mergePlurals(counts: Map<string, number>): Map<string, number> {
  const merged = new Map<string, number>();
  for (const [word, count] of counts) {
    const key = word
      .split(' ')
      .map((part, i, parts) => (i === parts.length - 1 ? singular(part, counts) : part))
      .join(' ');
    merged.set(key, (merged.get(key) ?? 0) + count);
  }
  return merged;
}

const byCountThenName = ([a, x]: [string, number], [b, y]: [string, number]) => y - x || (a < b ? -1 : a > b ? 1 : 0);

export function extractTags(html: string, url: string, options: ExtractOptions = {}): string[] {
  const o = { ...EXTRACT_DEFAULTS, ...options };
  const page = pageText(html, url);
  const nlp = getNlp();
  const its = nlp.its;
  const doc = nlp.readDoc([page.title, page.description, page.body].filter(Boolean).join('.\n'));
  const words = new Map<string, number>();
  const phrases = new Map<string, number>();
  doc.sentences().each((sentence: ItemSentence) => {
    let previous: { word: string; adjective: boolean } | null = null;
    sentence.tokens().each((token: ItemToken, index: number) => {
      const text = token.out();
      const pos = token.out(its.pos);
      const lower = text.toLowerCase();
      const capitalised = text !== lower && index > 0;
      const usable =
        WORD.test(lower) && lower.length >= 3 && !token.out(its.stopWordFlag) && pos !== 'PROPN' && !capitalised;
      if (!usable) {
        previous = null;
        return;
      }
      if (pos === 'NOUN') {
        const lemma = token.out(its.lemma as unknown as ItsFunction<string>).toLowerCase();
        const noun = WORD.test(lemma) ? lemma : lower;
        words.set(noun, (words.get(noun) ?? 0) + 1);
        if (previous?.adjective) {
          const phrase = `${previous.word} ${noun}`;
          phrases.set(phrase, (phrases.get(phrase) ?? 0) + 1);
        }
        previous = { word: noun, adjective: false };
      } else {
        previous = pos === 'ADJ' ? { word: lower, adjective: true } : null;
      }
    });
  });
  for (const keyword of page.keywords) {
    const target = keyword.includes(' ') ? phrases : words;
    target.set(keyword, (target.get(keyword) ?? 0) + o.keywordWeight);
  }
  const topWords = [...mergePlurals(words)].sort(byCountThenName).slice(0, o.maxWords);
  const topPhrases = [...mergePlurals(phrases)]
    .filter(([, count]) => count >= o.minPhraseCount)
    .sort(byCountThenName)
    .slice(0, o.maxPhrases);
  return [...new Set([...topWords, ...topPhrases].map(([tag]) => tag))].sort();
}
