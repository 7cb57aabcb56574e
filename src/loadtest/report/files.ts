/**
 * Writing result files under --out. The directory is checked before a run starts, so a run of minutes does not end
 * in a write error.
 */
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NodescaleError } from '../../errors.ts';

function outputError(dir: string, error: unknown): NodescaleError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new NodescaleError('NS_ERR_OUTPUT', `cannot write to --out ${dir}: ${reason}`, { cause: error });
}

/** Creates `dir` if needed and checks it can be written. */
export function prepareOutDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
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
