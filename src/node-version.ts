/**
 * The Node.js versions nodescale supports, read from package.json's `engines` (the one place that says it), and the
 * check that every entry point makes before anything else: on an older Node, one clear error instead of a failure
 * somewhere inside. bin/nodescale.js makes the same check in plain JavaScript, before it loads any of this.
 */
import { readFileSync } from 'node:fs';
import { NodescaleError } from './errors.ts';

const engines = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
).engines.node;

/** The oldest supported Node, from `engines.node` (">=22.18.0" → [22, 18]). */
export const MIN_NODE: readonly [number, number] = (() => {
  const match = /^>=\s*(\d+)\.(\d+)/.exec(engines);
  if (match === null)
    throw new Error(`package.json engines.node must read ">=MAJOR.MINOR.PATCH", got ${JSON.stringify(engines)}`);
  return [Number(match[1]), Number(match[2])];
})();

/** The message of NS_ERR_NODE_VERSION, advice a user can follow from their own project. */
function nodeVersionMessage(version: string = process.version): string {
  const floor = `${MIN_NODE[0]}.${MIN_NODE[1]}`;
  return (
    `nodescale needs Node >= ${floor} (the 22 and 24 LTS lines), this is ${version}. Install Node 24 LTS ` +
    '(nvm install 24, or your OS packages), or give your project its own: npm install --save-dev node@24, ' +
    'after which npx nodescale and npm scripts run on it'
  );
}

function supportedNode(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
}

if (!supportedNode()) {
  throw new NodescaleError('NS_ERR_NODE_VERSION', nodeVersionMessage());
}
