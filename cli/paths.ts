import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root folder: the one holding bin/warren.js, found upwards from this module, which
 * sits at cli/ in a checkout and at dist/cli/ in an installed package.
 */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** The CLI entry the supervisor and `warren start` run as child processes. */
export const WARREN_BIN = join(PACKAGE_ROOT, 'bin', 'warren.js');

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'warren.js'))) return dir;
    if (dirname(dir) === dir) throw new Error(`cannot find bin/warren.js above ${from}`);
  }
}
