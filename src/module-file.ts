/**
 * Modules that are loaded by URL (worker threads, tasks modules) rather than imported. A clone runs the TypeScript
 * sources and the published package its compiled JavaScript, and only import specifiers are rewritten by the build:
 * a URL is named here with the extension of the build that is running.
 */
const EXTENSION = import.meta.url.slice(import.meta.url.lastIndexOf('.'));

/** `sibling('./pool-worker', import.meta.url)`: the module next to `base`, in this build (.ts or .js). */
export function sibling(stem: string, base: string | URL): URL {
  return new URL(`${stem}${EXTENSION}`, base);
}
