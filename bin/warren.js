#!/usr/bin/env node
// In a checkout (the TypeScript sources beside this file) the CLI runs them through tsx, so
// `npx warren` works right after `npm ci` with no build step and never runs a stale build. An
// installed package carries only the compiled dist/, which runs on plain Node.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
