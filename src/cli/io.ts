/** Where a command writes: injected, so commands run in-process in tests. */
export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** stderr is a terminal: progress bars are drawn there. */
  interactive: boolean;
  /** Aborted on Ctrl-C: long-running commands stop and report what they measured. */
  signal: AbortSignal;
}

export function processIo(signal: AbortSignal): Io {
  return { stdout: process.stdout, stderr: process.stderr, interactive: process.stderr.isTTY === true, signal };
}

export interface Command {
  name: string;
  /** The whole `--help` text. */
  help: string;
  run(argv: string[], io: Io): Promise<number>;
}
