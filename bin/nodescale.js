#!/usr/bin/env node
// The CLI entry point. nodescale is written in TypeScript and run by Node's own type stripping
// (Node >= 22.18, on by default since Node 23.6), so there is no build step between a clone and a run.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `error NS_ERR_NODE_VERSION: nodescale needs Node >= 22.18, this is ${process.version}. ` +
      'Run it through npm (`npx nodescale`, `npm start`), which puts the Node 24 from devDependencies first on the PATH.\n',
  );
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
