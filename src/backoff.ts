/**
 * Exponential backoff with equal jitter, the one delay rule of nodescale (a crashed worker's restart, a lost
 * broker's reconnection): the ceiling doubles with each attempt in a row, from `initialMs` up to `maxMs`, and the
 * delay is a random point in its upper half, so that peers do not retry in lockstep and the delay still grows.
 */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** The longest delay before attempt `attempt` (1, 2, …), ms: the delay is between half of it and it. */
export function backoffCeiling(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** (attempt - 1));
}

/** The delay before attempt `attempt` (1, 2, …), ms. */
export function backoffDelay(backoff: Backoff, attempt: number, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(backoff, attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}
