/** The checks the transports' option resolvers share: each names the option the user gave. */
import { invalidOption } from '../errors.ts';
import { MAX_TIMER_MS } from '../units.ts';

export function whole(name: string, value: unknown, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidOption(
      name,
      max === Infinity ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`,
      value,
    );
  return value;
}

export function fraction(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value <= 1))
    throw invalidOption(name, 'a fraction of the deadline, more than 0 and at most 1 (1: never)', value);
  return value;
}

/** A deadline, ms: a whole number from 1 to 2³¹−1 (a longer timer would fire at once). */
export function deadline(name: string, value: unknown, fallback: number): number {
  const ms = whole(name, value, fallback, 1);
  if (ms > MAX_TIMER_MS) throw invalidOption(name, `a deadline of at most ${MAX_TIMER_MS} ms (about 24.8 days)`, value);
  return ms;
}

export function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}
