// `node pglite-initdb.mjs <folder>`: creates the embedded store's database in a new folder and
// exits. The API runs it as a process of its own before it opens the store (pglite-client.ts):
// PGlite's initdb loads a second PGlite and the initdb module, and whatever process ran them kept
// ~130-450 MiB of their memory (in V8 and in malloc's arenas) for good. Plain JavaScript, so it
// starts without a TypeScript loader in a checkout and in an installed package alike.
//
// initdb costs ~9 CPU-seconds and ~900 MiB here; its output is the same for a given PGlite
// version. So the first one leaves a copy in a per-user cache, `<WARREN_CACHE_DIR>/pglite-<version>`
// (default `$XDG_CACHE_HOME/warren`, else `~/.cache/warren`), and a new folder is a copy of it
// (~1 s). The copy is made complete before it is renamed into place, so a template that exists is
// whole. `WARREN_CACHE_DIR=off` runs initdb every time; a cache that cannot be written (a
// read-only home in a container) is skipped.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node pglite-initdb.mjs <folder>\n');
  process.exit(2);
}

const template = templateDir();
const empty = !existsSync(dir) || readdirSync(dir).length === 0;
if (template && empty && existsSync(join(template, 'PG_VERSION'))) {
  cpSync(template, dir, { recursive: true });
} else {
  const db = await PGlite.create(dir);
  await db.close();
  if (template && !existsSync(template)) keepTemplate(dir, template);
}

/** Where this PGlite version's template lives, or undefined when the cache is off. */
function templateDir() {
  const asked = process.env.WARREN_CACHE_DIR;
  if (asked === 'off') return undefined;
  const cache = asked || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'warren');
  return join(cache, `pglite-${pgliteVersion()}`);
}

/** The installed PGlite's version, from the package.json above its entry point. */
function pgliteVersion() {
  let d = dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  for (; d !== dirname(d); d = dirname(d)) {
    const file = join(d, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    if (pkg.name === '@electric-sql/pglite') return pkg.version;
  }
  throw new Error('cannot find the version of @electric-sql/pglite');
}

/** Copies the new folder beside the template, then renames it into place; best effort. */
function keepTemplate(from, to) {
  const partial = `${to}.partial-${process.pid}`;
  try {
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    cpSync(from, partial, { recursive: true });
    renameSync(partial, to);
  } catch {
    // Another process made it first, or the cache cannot be written: the next initdb tries again.
    rmSync(partial, { recursive: true, force: true });
  }
}
