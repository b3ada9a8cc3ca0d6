#!/usr/bin/env node
// `npm run build`: compiles the library and the CLI to dist/ (JavaScript, declarations, source
// maps) and copies what the compiled code reads beside it (the shipped topology). `npm pack` runs
// it (prepack), so the tarball never carries a stale build.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
// scripts/test.js built dist/ at its start and the test lanes' processes run from it: a rebuild now
// (npm pack's prepack in the package test, the bench's) would empty it under them.
if (process.env.WARREN_DIST_READY === '1') {
  console.log(`${dist} was built by the test runner and is in use (WARREN_DIST_READY=1): not rebuilt`);
  process.exit(0);
}
rmSync(dist, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
for (const f of readdirSync(join(root, 'topology')).filter((f) => /\.ya?ml$/.test(f))) {
  cpSync(join(root, 'topology', f), join(dist, 'topology', f));
}
// The embedded store's initdb runs as a process of its own from this plain JavaScript file.
cpSync(join(root, 'api/store/pglite-initdb.mjs'), join(dist, 'api/store/pglite-initdb.mjs'));
// The failure console's script and stylesheet, served from beside the compiled routes.
cpSync(join(root, 'api/admin/assets'), join(dist, 'api/admin/assets'), { recursive: true });
console.log(`built ${dist}`);
