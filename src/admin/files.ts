/**
 * The console's files: where a heap snapshot or a CPU profile goes (-o, or this user's private directory), and the
 * bytes a command streams, written as they come.
 */
import { createWriteStream, mkdirSync, rmSync, statSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';
import type { AdminClient } from '../socket/client.ts';

/** Where a snapshot or profile goes: -o FILE (checked now), or a fresh name in this user's private directory. */
export function outputFile(command: 'heap-snapshot' | 'cpu-profile', out: string | null): string {
  const name = `${command === 'heap-snapshot' ? 'heap' : 'cpu'}-${new Date().toISOString().replace(/[:.]/g, '-')}.${command === 'heap-snapshot' ? 'heapsnapshot' : 'cpuprofile'}`;
  if (out === null) {
    const dir = path.join(os.tmpdir(), `nodescale-${process.getuid?.() ?? 'user'}`, 'profiles');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return path.join(dir, name);
  }
  const existing = statSync(out, { throwIfNoEntry: false });
  if (existing?.isDirectory()) return path.join(out, name);
  if (!statSync(path.dirname(path.resolve(out)), { throwIfNoEntry: false })?.isDirectory()) {
    throw new NodescaleError(
      'NS_ERR_OUTPUT',
      `cannot write -o ${out}: no directory ${path.dirname(path.resolve(out))}`,
    );
  }
  return out;
}

/**
 * Streams a command's bytes into `file`, created only when the first bytes arrive: a refused command (cpu-profile
 * --seconds 1000) leaves no empty file. A write error is NS_ERR_OUTPUT, and the partial file is removed.
 */
export async function receiveFile(
  client: AdminClient,
  command: string,
  args: Record<string, unknown>,
  file: string,
): Promise<unknown> {
  let stream: WriteStream | null = null;
  let failure: Error | null = null;
  const outputError = (error: NodeJS.ErrnoException) =>
    new NodescaleError('NS_ERR_OUTPUT', `cannot write ${file}: ${error.code ?? error.message}`, { cause: error });
  try {
    const result = await client.request(command, args, {
      onChunk: (bytes) => {
        if (stream === null) {
          stream = createWriteStream(file, { mode: 0o600 });
          stream.on('error', (error) => (failure ??= outputError(error)));
        }
        stream.write(bytes);
      },
    });
    const opened = stream as WriteStream | null;
    if (opened !== null) await new Promise<void>((resolve) => opened.end(() => resolve()));
    // Set by the stream's 'error' listener: the type checker cannot see that it may be by now.
    const failed = failure as Error | null;
    if (failed !== null) throw failed;
    return result;
  } catch (error) {
    const opened = stream as WriteStream | null;
    if (opened !== null) {
      opened.destroy();
      rmSync(file, { force: true });
    }
    throw error;
  }
}
