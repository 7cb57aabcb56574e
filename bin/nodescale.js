#!/usr/bin/env node
// The CLI's entry point, in plain JavaScript so that any Node can read it far enough to say which Node it needs.
//
// Which code it runs follows Node's own rule for TypeScript: Node strips types only outside node_modules. A clone of
// the repository runs the sources (no build step between an edit and a run); an installed package, which lives under
// node_modules, runs the JavaScript that `npm run build` compiled into dist/ (with source maps to the sources beside it).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const { engines } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const [, floorMajor, floorMinor] = /^>=\s*(\d+)\.(\d+)/.exec(engines.node).map(Number);
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < floorMajor || (major === floorMajor && minor < floorMinor)) {
  // The same words as src/node-version.ts, which this file cannot load on an old Node.
  process.stderr.write(
    `error NS_ERR_NODE_VERSION: nodescale needs Node >= ${floorMajor}.${floorMinor} (the 22 and 24 LTS lines), ` +
      `this is ${process.version}. Install Node 24 LTS (nvm install 24, or your OS packages), or give your project ` +
      'its own: npm install --save-dev node@24, after which npx nodescale and npm scripts run on it\n',
  );
  process.exit(1);
}

const sources = new URL('../src/cli/main.ts', import.meta.url);
const installed = realpathSync(fileURLToPath(import.meta.url))
  .split(/[\\/]/)
  .includes('node_modules');
let entry = new URL('../dist/cli/main.js', import.meta.url);
if (!installed && existsSync(sources)) entry = sources;
else (await import('node:module')).setSourceMapsSupport(true); // stack traces name the .ts sources in the package
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
