/**
 * Options objects are checked for names they do not know: a typo (`maxEventLoopDelay` for `maxEventLoopDelayMs`)
 * would otherwise be ignored in silence, and the default used in its place. The error names the nearest known name.
 */
import { NodescaleError } from './errors.ts';

/** Throws NS_ERR_INVALID_OPTION for the first key of `value` that is not in `known`. `prefix`: 'overload.' and so on. */
export function refuseUnknownOptions(value: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const nearest = nearestName(key, known);
    throw new NodescaleError(
      'NS_ERR_INVALID_OPTION',
      `unknown option ${prefix}${key}${nearest === null ? `; the options are ${known.map((k) => prefix + k).join(', ')}` : `; did you mean ${prefix}${nearest}?`}`,
    );
  }
}

/** The known name closest to `name` (case-insensitive edit distance), if it is close enough to be a typo of it. */
export function nearestName(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : null;
}

/** Levenshtein distance, O(a × b) time and O(b) space; option names are short. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
