/** Runs the CLI in-process with captured output, or as a real child process. */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  argv: string[],
  options: { interactive?: boolean; signal?: AbortSignal } = {},
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await main(argv, {
    stdout,
    stderr,
    interactive: options.interactive ?? false,
    signal: options.signal ?? new AbortController().signal,
  });
  return { code, stdout: out, stderr: err };
}

export const BIN = new URL('../../bin/nodescale.js', import.meta.url).pathname;

/** Runs bin/nodescale.js in a child process with the current Node (in `cwd`, default this one's). */
export function runBin(argv: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const options = { timeout: 60_000, env: { ...process.env, ...env }, ...(cwd === undefined ? {} : { cwd }) };
    execFile(process.execPath, [BIN, ...argv], options, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}
