/**
 * Writing result files under --out. The directory is checked before a run starts, so a run of minutes does not end
 * in a write error.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NodescaleError } from '../../errors.ts';

function outputError(dir: string, error: unknown): NodescaleError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new NodescaleError('NS_ERR_OUTPUT', `cannot write to --out ${dir}: ${reason}`, { cause: error });
}

/**
 * Creates `dir` if needed, one level at a time, and checks it can be written. Not mkdirSync's `recursive`: on a
 * file system that answers ENOENT to every mkdir (procfs: `--out /proc/x`), Node's recursive mkdir loops forever.
 */
export function makeDirectories(dir: string): void {
  const missing: string[] = [];
  let at = path.resolve(dir);
  while (!existsSync(at)) {
    missing.unshift(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const level of missing) mkdirSync(level);
}

/** Creates `dir` if needed and checks it can be written. */
export function prepareOutDir(dir: string): void {
  try {
    makeDirectories(dir);
    accessSync(dir, constants.W_OK);
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (error) {
    throw outputError(dir, error);
  }
}

/** Writes each file (name → content) into `dir`; returns the paths written. */
export function writeOutFiles(dir: string, files: Record<string, string>): string[] {
  prepareOutDir(dir);
  return Object.entries(files).map(([name, content]) => {
    const file = path.join(dir, name);
    try {
      writeFileSync(file, content);
    } catch (error) {
      throw outputError(dir, error);
    }
    return file;
  });
}
