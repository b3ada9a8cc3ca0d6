#!/usr/bin/env node
import { createHash } from 'node:crypto';
// The test command of the mutation runs (scripts/mutation.js): runs the unit test files matching
// a pattern in one plain node process. Stryker instruments every mutant into the sources at once
// and picks the active one from an environment variable, so the sources do not change between
// runs: they are bundled once (esbuild, packages left external) on the first run in a sandbox,
// and each later run only loads the bundle. That saves the TypeScript loader's start-up, most of
// a run's cost, once per mutant. Outside a Stryker sandbox the bundle is rebuilt on every run
// and removed after loading (sources change between runs there).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const pattern = new RegExp(process.argv[2] ?? '.');
const files = readdirSync('test/unit')
  .filter((f) => f.endsWith('.test.ts') && pattern.test(f))
  .sort();
if (files.length === 0) {
  console.error(`no unit test file matches ${pattern}`);
  process.exit(2);
}
const sandboxed = process.cwd().includes(`${sep}.stryker-tmp${sep}`);
const key = createHash('sha256').update(files.join('\n')).digest('hex').slice(0, 12);
// In the project folder, not a temporary one: the bundle's packages resolve from its location.
const bundle = join(process.cwd(), `.mutation-tests-${key}${sandboxed ? '' : `-${process.pid}`}.mjs`);
if (!sandboxed || !existsSync(bundle)) {
  const { build } = await import('esbuild');
  await build({
    stdin: { contents: files.map((f) => `import './test/unit/${f}';`).join('\n'), resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: bundle,
    logLevel: 'warning',
    // Modules that find files next to themselves (import.meta.url) keep their own location.
    plugins: [
      {
        name: 'own-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => ({
            contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
            loader: 'ts',
          }));
        },
      },
    ],
  });
}
try {
  await import(pathToFileURL(bundle).href);
} finally {
  if (!sandboxed) rmSync(bundle, { force: true });
}
