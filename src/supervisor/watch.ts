/**
 * Watch mode (`nodescale run --watch`), for development: a change under the watched paths reloads the app through
 * the supervisor's own health-gated rolling reload, so a version that does not start (a syntax error) leaves the old
 * one serving, and the reason is one line.
 *
 * - Debounced: a save that writes several files, or one file several times, is one reload, `debounceMs` after the
 *   last change. A change while a reload runs queues one more, after it, never more than one.
 * - Ignored: anything under node_modules or .git, the log file's directory (a log line is a change, and a change a
 *   log line: pm2's restart loop, Unitech/pm2#5061, #3318), and the `ignore` patterns (globs: `*` within a path
 *   segment, `**` across them, matched against the path relative to the watched directory, or against its name).
 * - fs.watch (inotify under Linux): the directory's own files, and each of its subdirectories that is not ignored
 *   with `recursive`, so node_modules costs no watch at all. A subdirectory made after the start is not watched
 *   (its first files are seen as the directory's own change, and reload once). A watched path that does not exist is
 *   an error at start, not a silent nothing.
 */
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';

export interface WatchOptions {
  paths: string[];
  ignore: string[];
  /** Directories whose changes never count (the log file's). */
  ignoreDirs: string[];
  debounceMs?: number;
  /** Called once per settled burst of changes with one of the changed files; resolves when its reload is done. */
  onChange: (file: string) => Promise<void>;
}

const ALWAYS_IGNORED = new Set(['node_modules', '.git']);

/** A glob as a regular expression: `**` any path, `*` within one segment, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // "**/" matches no directory or several.
      source += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

export function isIgnored(relative: string, patterns: RegExp[]): boolean {
  const parts = relative.split(/[\\/]/);
  if (parts.some((part) => ALWAYS_IGNORED.has(part))) return true;
  const posix = parts.join('/');
  return patterns.some((p) => p.test(posix) || p.test(parts.at(-1)!));
}

export function startWatch(options: WatchOptions): { close(): void } {
  const patterns = options.ignore.map(globToRegExp);
  const ignoreDirs = options.ignoreDirs.map((dir) => path.resolve(dir) + path.sep);
  const debounceMs = options.debounceMs ?? 300;
  let timer: NodeJS.Timeout | null = null;
  let last = '';
  let running = false;
  let again = false;
  const fire = () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void options.onChange(last).finally(() => {
      running = false;
      if (again) {
        again = false;
        fire();
      }
    });
  };
  const watchers: FSWatcher[] = [];
  const changed = (file: string, relative: string) => {
    if (ignoreDirs.some((ignored) => file.startsWith(ignored))) return;
    if (isIgnored(relative, patterns)) return;
    last = file;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };
  const add = (dir: string, recursive: boolean, only: string | null, base: string) => {
    const watcher = watch(dir, { recursive }, (_event, name) => {
      if (name === null) return;
      const relative = path.join(path.relative(base, dir), String(name));
      if (only !== null && String(name) !== only) return;
      changed(path.join(dir, String(name)), relative);
    });
    watcher.on('error', () => {}); // a watched directory removed: its watcher ends; the others go on
    watchers.push(watcher);
  };
  for (const target of options.paths) {
    const absolute = path.resolve(target);
    if (!existsSync(absolute))
      throw new NodescaleError('NS_ERR_INVALID_OPTION', `--watch-path ${target}: no such file or directory`);
    if (!statSync(absolute).isDirectory()) {
      add(path.dirname(absolute), false, path.basename(absolute), path.dirname(absolute));
      continue;
    }
    // The directory's own files, then each subdirectory that is not ignored, recursively: a recursive watch of the
    // whole tree would put an inotify watch on every directory of node_modules (thousands) only to ignore them.
    add(absolute, false, null, absolute);
    for (const entry of readdirSync(absolute, { withFileTypes: true })) {
      const sub = path.join(absolute, entry.name);
      if (!entry.isDirectory() || isIgnored(entry.name, patterns)) continue;
      if (ignoreDirs.some((ignored) => `${sub}${path.sep}`.startsWith(ignored))) continue;
      add(sub, true, null, absolute);
    }
  }
  return {
    close() {
      if (timer !== null) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
