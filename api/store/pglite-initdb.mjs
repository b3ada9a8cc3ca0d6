// `node pglite-initdb.mjs <folder>`: creates the embedded store's database in a new folder and
// exits. The API runs it as a process of its own before it opens the store (pglite-client.ts):
// PGlite's initdb loads a second PGlite and the initdb module, and whatever process ran them kept
// ~130-450 MiB of their memory (in V8 and in malloc's arenas) for good. Plain JavaScript, so it
// starts without a TypeScript loader in a checkout and in an installed package alike.
import { PGlite } from '@electric-sql/pglite';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node pglite-initdb.mjs <folder>\n');
  process.exit(2);
}
const db = await PGlite.create(dir);
await db.close();
