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

/**
 * A command never dies of its own output: once the reader of stdout or stderr is gone (EPIPE: `nodescale run app.js
 * | head`, a `| tee` stopped by Ctrl-C, a log collector restarting; EIO: the terminal closed), what is written there
 * is dropped and the command goes on (a supervisor keeps its app serving). Without a listener, that 'error' would end
 * the process with a stack trace.
 */
export function survivesClosedReader(stream: NodeJS.WritableStream): void {
  if (stream.listeners('error').includes(dropOutput)) return;
  stream.on('error', dropOutput);
}

/** The stream is errored from then on: later writes are dropped (their ERR_STREAM_DESTROYED comes here too). */
const dropOutput = (): void => {};

export function processIo(signal: AbortSignal): Io {
  survivesClosedReader(process.stdout);
  survivesClosedReader(process.stderr);
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
