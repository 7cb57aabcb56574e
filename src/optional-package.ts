/**
 * A dependency that only one part of nodescale needs, loaded when that part is first used. The `nodescale` package
 * depends on all of them; the light packages (`@nodescale/compute`, …) declare them as optional peers, so a project
 * that never uses the part never installs it, and one that uses it without installing it gets a line saying what to
 * install instead of ERR_MODULE_NOT_FOUND from deep inside.
 */
import { NodescaleError } from './errors.ts';

/**
 * `load()` is the caller's own `() => import(…)` with a literal specifier, so bundlers and tsc still see the
 * dependency, resolved from the caller's module.
 */
export async function loadOptional<T>(name: string, neededFor: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // Only the package itself missing: a missing file inside an installed package is a broken install, not this.
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${name}'`)) {
      throw new NodescaleError(
        'NS_ERR_MISSING_PACKAGE',
        `${neededFor} needs the ${name} package, which is not installed: npm install ${name}`,
        { cause: error },
      );
    }
    throw error;
  }
}
