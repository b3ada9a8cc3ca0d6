#!/usr/bin/env node
// In a checkout (the TypeScript sources beside this file) the CLI runs them through tsx, so
// `npx warren` works right after `npm ci` with no build step and never runs a stale build. An
// installed package carries only the compiled dist/, which runs on plain Node. WARREN_FROM_BUILD=1
// runs a checkout's dist/ (after `npm run build`) as an installed package would: the benchmark
// measures that, and the processes this one starts inherit the choice.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
let main;
if (existsSync(sources) && process.env.WARREN_FROM_BUILD !== '1') {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
