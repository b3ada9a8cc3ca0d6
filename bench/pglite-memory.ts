// Measures what the embedded store costs the process that opens it: RSS and its high-water mark
// after openPgliteClient on a new folder, after 5 000 rows, and after a reopen on that folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPgliteClient } from '../api/store/pglite-client.ts';
import { statusKb } from './lib/procs.ts';

function status(): { rss: number; hwm: number } {
  return { rss: Math.round(statusKb(process.pid, 'VmRSS') / 1024), hwm: Math.round(statusKb(process.pid, 'VmHWM') / 1024) };
}

const dir = mkdtempSync(join(tmpdir(), 'warren-pglite-mem-'));
const base = status();
let t = Date.now();
const db = await openPgliteClient(dir);
const opened = { ...status(), seconds: (Date.now() - t) / 1000 };
await db.query('create table if not exists t (id text primary key, body text)');
for (let i = 0; i < 50; i++) {
  await db.transaction(async (tx) => {
    for (let j = 0; j < 100; j++) await tx.query('insert into t values ($1, $2)', [`${i}-${j}`, 'x'.repeat(256)]);
  });
}
const filled = status();
await db.close();
t = Date.now();
const again = await openPgliteClient(dir);
const reopened = { ...status(), seconds: (Date.now() - t) / 1000 };
await again.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ base, opened, filled, reopened }));
