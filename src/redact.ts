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
    const arg = redactUrls(argv[i]!, REDACTED);
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

/**
 * The credentials of every URL in `text` replaced by `mask`: `amqp://guest:p@ss/w@host` → `amqp://guest:***@host`
 * (the password up to the last `@` of the URL, so a raw `@` or `/` in it is no way out), `https://TOKEN@host` →
 * `https://***@host`. Erring on the safe side: an `@` later in a URL's path masks its host too.
 */
function redactUrls(text: string, mask: string): string {
  return text.replace(/(\b[a-z][\w+.-]*:\/\/)(\S*)@/gi, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon === -1 ? `${scheme}${mask}@` : `${scheme}${userinfo.slice(0, colon)}:${mask}@`;
  });
}

/** A URL (or any text holding URLs) without its credentials (amqp://guest:***@host), for messages and logs. */
export function redactUrl(raw: string): string {
  return redactUrls(raw, '***');
}

/**
 * The diagnostic report as JSON, every environment variable's value replaced and secrets in the command line too:
 * in the process's own section and in each worker thread's (`workers[]`, reports of their own, with the same
 * environment and command line).
 */
export function redactedReport(error?: Error): Record<string, unknown> {
  const report = (error ? process.report.getReport(error) : process.report.getReport()) as unknown as Record<
    string,
    unknown
  >;
  return redactReportSection(report);
}

/** Redacts one report section in place, and the sections of its worker threads. */
export function redactReportSection(report: Record<string, unknown>): Record<string, unknown> {
  const env = report.environmentVariables as Record<string, string> | undefined;
  if (env !== null && typeof env === 'object')
    report.environmentVariables = Object.fromEntries(Object.keys(env).map((key) => [key, REDACTED]));
  const header = report.header as { commandLine?: string[] } | undefined;
  if (Array.isArray(header?.commandLine)) header.commandLine = redactArgv(header.commandLine);
  if (Array.isArray(report.workers))
    for (const worker of report.workers as unknown[])
      if (worker !== null && typeof worker === 'object') redactReportSection(worker as Record<string, unknown>);
  return report;
}
