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
 * - fs.watch with `recursive` (inotify under Linux, from Node 20). A watched path that does not exist is an error at
 *   start, not a silent nothing.
 */
import { existsSync, statSync, watch, type FSWatcher } from 'node:fs';
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
  for (const target of options.paths) {
    const absolute = path.resolve(target);
    if (!existsSync(absolute))
      throw new NodescaleError('NS_ERR_INVALID_OPTION', `--watch-path ${target}: no such file or directory`);
    const dir = statSync(absolute).isDirectory() ? absolute : path.dirname(absolute);
    const only = dir === absolute ? null : path.basename(absolute);
    const watcher = watch(dir, { recursive: only === null }, (_event, name) => {
      if (name === null) return;
      const relative = String(name);
      if (only !== null && relative !== only) return;
      const file = path.join(dir, relative);
      if (ignoreDirs.some((ignored) => file.startsWith(ignored))) return;
      if (isIgnored(relative, patterns)) return;
      last = file;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(fire, debounceMs);
    });
    watcher.on('error', () => {}); // a watched directory removed: its watcher ends; the others go on
    watchers.push(watcher);
  }
  return {
    close() {
      if (timer !== null) clearTimeout(timer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
