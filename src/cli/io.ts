/** Where a command writes: injected, so commands run in-process in tests. */
export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** stderr is a terminal: progress bars are drawn there. */
  interactive: boolean;
  /** Aborted on Ctrl-C: long-running commands stop and report what they measured. */
  signal: AbortSignal;
  /** The terminal, when stdout is one: charts are drawn to its width; keys and lines are read from stdin if it is one. */
  terminal?: { stdin: NodeJS.ReadStream | null; columns(): number };
}

export function processIo(signal: AbortSignal): Io {
  const terminal = process.stdout.isTTY
    ? { stdin: process.stdin.isTTY ? process.stdin : null, columns: () => process.stdout.columns }
    : undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    interactive: process.stderr.isTTY === true,
    signal,
    ...(terminal ? { terminal } : {}),
  };
}

export interface Command {
  name: string;
  /** The whole `--help` text. */
  help: string;
  run(argv: string[], io: Io): Promise<number>;
}
