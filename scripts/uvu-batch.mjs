// Runs several uvu test files in one process, as uvu's own CLI runs a folder (`uvu/run`): each
// file's suites are queued under its name and uvu prints one set of totals. scripts/test.js uses
// it for the unit files. Usage: node --import tsx scripts/uvu-batch.mjs <file.test.ts>...
import { basename, resolve } from 'node:path';
import { run } from 'uvu/run';

const files = process.argv.slice(2);
// uvu/run imports 'file:///' + file, so the path goes without its leading slash.
await run(files.map((file) => ({ file: resolve(file).replace(/^\//, ''), name: basename(file) })));
