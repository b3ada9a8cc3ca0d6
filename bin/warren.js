#!/usr/bin/env node
// The CLI runs the TypeScript sources directly through tsx, so `npx warren` works right after
// `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
