/**
 * Human forms of durations and sizes, as the CLI accepts them: `10s`, `500ms`, `250us`, `2m`, `1h`; `2mb`, `64kb`.
 * A bare number is seconds (durations) or bytes (sizes), as wrk and autocannon read them.
 */
import { invalidOption } from './errors.ts';

const DURATION_MS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 };
const SIZE_BYTES: Record<string, number> = {
  b: 1,
  '': 1,
  kb: 1024,
  k: 1024,
  mb: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  g: 1024 ** 3,
};

/** Parses a duration into milliseconds. */
export function parseDuration(name: string, raw: string | number): number {
  if (typeof raw === 'number') return checkFinite(name, raw, 'a duration such as 10s or 500ms', raw * 1000);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zµ]*)\s*$/i.exec(raw);
  const factor = match ? DURATION_MS[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) throw invalidOption(name, 'a duration such as 10s, 500ms or 2m', raw);
  return Number(match[1]) * factor;
}

/** Parses a size into bytes. */
export function parseSize(name: string, raw: string | number): number {
  if (typeof raw === 'number') return checkFinite(name, raw, 'a size such as 64kb or 2mb', raw);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
  const factor = match ? SIZE_BYTES[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) throw invalidOption(name, 'a size such as 64kb or 2mb', raw);
  return Math.round(Number(match[1]) * factor);
}

function checkFinite(name: string, raw: number, expected: string, value: number): number {
  if (!Number.isFinite(raw) || raw < 0) throw invalidOption(name, expected, raw);
  return value;
}

/** A duration as the flags take it, for help texts: 30s, 250ms, 2m. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Formats milliseconds for people: 183µs, 4.21ms, 1.35s. */
export function formatMs(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1) return `${Math.round(ms * 1000)}µs`;
  if (ms < 10) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${ms.toFixed(1)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** The longest timer Node honours: setTimeout turns a longer one into 1 ms. Every deadline is at most this. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
