/**
 * Secrets out of what leaves the process: the rule is the same wherever a command line or the environment is written
 * down (crash bundles, the admin console's `info` and `report`).
 */

export const REDACTED = '[redacted]';

/** A flag whose name says it holds a secret: --db-password, --api-token, --client-secret, --auth, --api-key… */
const SECRET_FLAG =
  /^--?[\w.-]*(pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credentials?|(^|[-_])auth(orization)?)[\w.-]*$/i;

/**
 * Command-line arguments with the values of secrets replaced: the value of a flag whose name says it is a secret
 * (`--db-password=x`, `--api-token x`), and the password of a URL with credentials (`postgres://user:x@host`). The
 * rule is the same wherever a command line leaves the process: crash bundles, the console's `report` and `info`.
 */
export function redactArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!.replace(/(\w+:\/\/[^:/@\s]*:)[^@/\s]+@/g, `$1${REDACTED}@`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!SECRET_FLAG.test(name)) out.push(arg);
    else if (eq !== -1) out.push(`${name}=${REDACTED}`);
    else {
      out.push(arg);
      if (i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
        out.push(REDACTED);
        i++;
      }
    }
  }
  return out;
}

/** A URL without its password (amqp://guest:***@host), for messages and logs. */
export function redactUrl(raw: string): string {
  return raw.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

/** The diagnostic report as JSON, every environment variable's value replaced and secrets in the command line too. */
export function redactedReport(error?: Error): Record<string, unknown> {
  const report = (error ? process.report.getReport(error) : process.report.getReport()) as unknown as Record<
    string,
    unknown
  >;
  const env = report.environmentVariables as Record<string, string> | undefined;
  if (env) report.environmentVariables = Object.fromEntries(Object.keys(env).map((key) => [key, REDACTED]));
  const header = report.header as { commandLine?: string[] } | undefined;
  if (Array.isArray(header?.commandLine)) header.commandLine = redactArgv(header.commandLine);
  return report;
}
