/**
 * Command-line parsing on node:util's parseArgs, strict: an unknown flag or a flag without its value is a usage
 * error (exit 2) with the command's name in the message. Values are converted and checked here, once.
 */
import { SECRET_URL_ENV } from '../ipc.ts';
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import type { ClientTls } from '../client-tls.ts';
import { invalidOption, NodescaleError } from '../errors.ts';
import { parseDuration, parseSize } from '../units.ts';

export type OptionSpecs = ParseArgsOptionsConfig;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Flags every command takes (and -h/--help, which main.ts answers before a command parses anything). */
export const COMMON_FLAGS = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
} as const satisfies OptionSpecs;

export interface ParsedArgs {
  values: Values;
  positionals: string[];
}

export function parseCommandLine(
  command: string,
  argv: string[],
  options: OptionSpecs,
  maxPositionals: number,
): ParsedArgs {
  let parsed: ParsedArgs;
  try {
    const { values, positionals } = parseArgs({
      args: negativeValues(argv, options),
      options,
      strict: true,
      allowPositionals: true,
    });
    parsed = { values, positionals };
    parsed.positionals = parsed.positionals.map((p) => (p.startsWith(NEGATIVE) ? p.slice(NEGATIVE.length) : p));
  } catch (error) {
    // parseArgs explains over several lines; the first sentence says it.
    const message = (error as Error).message.split(/\.\s+/)[0]!.replace(/^Unknown option/, 'unknown option');
    throw new NodescaleError('NS_ERR_USAGE', `${command}: ${message} (see nodescale ${command} --help)`, {
      cause: error,
    });
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `${command}: unexpected argument "${parsed.positionals[maxPositionals]}" (see nodescale ${command} --help)`,
    );
  }
  return parsed;
}

/** Marks a negative number standing alone, a positional (`scale -1`), past parseArgs; removed after it. */
const NEGATIVE = '\u0000negative:';

/**
 * `-c -5`: parseArgs refuses a value that starts with a dash as ambiguous. A negative number after an option that
 * takes a value is that value, passed inline (`--connections=-5`, `-c-5`), so that it is checked like any other and
 * refused with what the option expects. A negative number standing alone is a positional (`scale -1`), checked by
 * its command, not an unknown option.
 */
function negativeValues(argv: string[], options: OptionSpecs): string[] {
  const takesValue = new Set<string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (spec.short !== undefined) takesValue.add(`-${spec.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return out.concat(argv.slice(i));
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(arg.startsWith('--') ? `${arg}=${next}` : `${arg}${next}`); // --connections=-5, -c-5
      i++;
    } else out.push(/^-\d/.test(arg) ? `${NEGATIVE}${arg}` : arg);
  }
  return out;
}

function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A whole number flag, or undefined when absent. */
export function intFlag(values: Values, name: string): number | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim())) throw invalidOption(`--${name}`, 'a whole number', raw);
  return Number(raw);
}

/** A port flag (0 to 65535; 0 picks a free port), or `fallback` when absent. */
export function portFlag(values: Values, name: string, fallback: number): number {
  const port = intFlag(values, name) ?? fallback;
  if (port > 65535) throw invalidOption(`--${name}`, 'a port from 0 to 65535', port);
  return port;
}

/** `--metrics 9100` or `--metrics 0.0.0.0:9100` (host 127.0.0.1 unless given), or null when absent. */
export function hostPortFlag(values: Values, name: string): { host: string; port: number } | null {
  const raw = stringValue(values, name);
  if (raw === undefined) return null;
  const match = /^(?:(.+):)?(\d{1,5})$/.exec(raw);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw invalidOption(`--${name}`, 'a port or host:port', raw);
  return { host: match[1]?.replace(/^\[(.*)\]$/, '$1') ?? '127.0.0.1', port };
}

/** A number flag (≥ 0, or > 0 with `positive`), or undefined when absent. */
export function numberFlag(values: Values, name: string, positive = false): number | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    throw invalidOption(`--${name}`, positive ? 'a number > 0' : 'a number ≥ 0', raw);
  }
  return value;
}

/** A duration flag in ms (`10s`, `500ms`; a bare number is seconds), or undefined. */
export function durationFlag(values: Values, name: string): number | undefined {
  const raw = stringValue(values, name);
  return raw === undefined ? undefined : parseDuration(`--${name}`, raw);
}

export function sizeFlag(values: Values, name: string): number | undefined {
  const raw = stringValue(values, name);
  return raw === undefined ? undefined : parseSize(`--${name}`, raw);
}

export function textFlag(values: Values, name: string): string | undefined {
  return stringValue(values, name);
}

/** A token read from the file a flag names (trimmed), or undefined without the flag; an unreadable file is a usage error. */
export function tokenFileFlag(values: Values, name: string): string | undefined {
  const file = stringValue(values, name);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw invalidOption(`--${name}`, 'a file this user can read', `${file} (${(error as NodeJS.ErrnoException).code})`);
  }
}

export function listFlag(values: Values, name: string): string[] {
  const value = values[name];
  return Array.isArray(value)
    ? value.filter((v): v is string => typeof v === 'string')
    : typeof value === 'string'
      ? [value]
      : [];
}

export function boolFlag(values: Values, name: string): boolean {
  return values[name] === true;
}

export function requirePositional(command: string, positionals: string[], what: string): string {
  const value = positionals[0];
  if (value === undefined)
    throw new NodescaleError('NS_ERR_USAGE', `${command}: missing ${what} (see nodescale ${command} --help)`);
  return value;
}

/** The entries of `values` that are not undefined: flags that were given, ready to spread into options. */
export function defined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export { SECRET_URL_ENV };

/**
 * A URL that may carry a password: `--<name> URL`, else the file `--<name>-file FILE` (one URL a line, # comments;
 * several lines, the nodes of a cluster, come back as one comma-separated list, as the flag takes them), else the
 * environment variable (NODESCALE_BROKER_URL, NODESCALE_STORE_URL). The flag is readable by every local user in
 * /proc/PID/cmdline; the file and the environment are not.
 */
export function secretUrlFlag(
  values: Values,
  name: keyof typeof SECRET_URL_ENV,
  env = process.env,
): string | undefined {
  const given = textFlag(values, name);
  const file = textFlag(values, `${name}-file`);
  if (given !== undefined && file !== undefined)
    throw new NodescaleError('NS_ERR_USAGE', `give --${name} or --${name}-file, not both`);
  if (given !== undefined) return given;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new NodescaleError(
        'NS_ERR_USAGE',
        `--${name}-file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    // One URL a line; several (the nodes of a cluster) are given on as one comma-separated list.
    const urls = text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    if (urls.length === 0) throw new NodescaleError('NS_ERR_USAGE', `--${name}-file: ${file} is empty`);
    return urls.join(',');
  }
  const fromEnv = env[SECRET_URL_ENV[name]];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/**
 * The TLS files of a connection: `--<name>-ca FILE`, `--<name>-cert FILE` and `--<name>-key FILE`, read (PEM), for a
 * TLS URL only (amqps://, rediss://); a certificate goes with its key. Undefined when none is given.
 */
export function tlsFlags(values: Values, name: 'broker' | 'store', url: string | undefined): ClientTls | undefined {
  const files = {
    ca: textFlag(values, `${name}-ca`),
    cert: textFlag(values, `${name}-cert`),
    key: textFlag(values, `${name}-key`),
  };
  const given = Object.entries(files).filter(([, file]) => file !== undefined) as [keyof ClientTls, string][];
  if (given.length === 0) return undefined;
  const flags = given.map(([field]) => `--${name}-${field}`).join(', ');
  // The scheme of the URL, or of the first of a list (the nodes of a cluster, which share one).
  const protocol = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url ?? '')?.[1]?.toLowerCase() ?? '';
  if (protocol !== (name === 'broker' ? 'amqps:' : 'rediss:'))
    throw new NodescaleError(
      'NS_ERR_USAGE',
      `${flags}: give them with a --${name} ${name === 'broker' ? 'amqps' : 'rediss'}:// URL`,
    );
  if ((files.cert === undefined) !== (files.key === undefined))
    throw new NodescaleError('NS_ERR_USAGE', `--${name}-cert and --${name}-key go together`);
  const tls: ClientTls = {};
  for (const [field, file] of given) {
    try {
      tls[field] = readFileSync(file);
    } catch (error) {
      throw new NodescaleError(
        'NS_ERR_USAGE',
        `--${name}-${field}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  return tls;
}
