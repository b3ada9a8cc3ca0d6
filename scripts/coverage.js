#!/usr/bin/env node
// `npm run coverage [-- unit | integration | a test file]`: runs the tests under c8 and prints
// line and branch coverage per folder. scripts/test.js starts one process per test file, and the
// integration tests start Warren's own processes: c8 sets NODE_V8_COVERAGE, every child inherits
// it and writes its V8 coverage there (a process ended by SIGKILL writes none), and c8 merges them
// through tsx's source maps. Settings in .c8rc.json; the HTML report lands in coverage/index.html.
// Exits 1 when a test failed or a library folder is below its target.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
/** The library folders and their targets; the services' folders (api, cli) are shown, not held to them. */
const LIBRARY = ['core', 'amqp', 'topology', 'worker', 'producer'];
const TARGET = { lines: 85, branches: 75 };
const FOLDERS = [...LIBRARY, 'api', 'cli'];

const c8 = join(createRequire(import.meta.url).resolve('c8/package.json'), '..', 'bin', 'c8.js');
const run = spawnSync(process.execPath, [c8, '--reporter=json-summary', '--reporter=html', 'node', 'scripts/test.js', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  // Coverage maps every process through tsx's source maps: no compiled build in between.
  env: { ...process.env, TEST_FROM_SOURCE: '1' },
});
const summaryFile = join(root, 'coverage', 'coverage-summary.json');
if (!existsSync(summaryFile)) {
  console.error('no coverage summary was written (did c8 run?)');
  process.exit(1);
}

/** @type {Record<string, { lines: { total: number, covered: number }, branches: { total: number, covered: number } }>} */
const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
const sums = new Map(FOLDERS.map((f) => [f, { files: 0, lines: [0, 0], branches: [0, 0] }]));
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const folder = relative(root, file).split(sep)[0];
  const sum = sums.get(folder);
  if (!sum) continue;
  sum.files += 1;
  sum.lines[0] += s.lines.covered;
  sum.lines[1] += s.lines.total;
  sum.branches[0] += s.branches.covered;
  sum.branches[1] += s.branches.total;
}

const pct = ([covered, total]) => (total === 0 ? 100 : (100 * covered) / total);
const missed = [];
console.log(`\nCoverage per folder (target for library folders: ${TARGET.lines}% lines, ${TARGET.branches}% branches)`);
console.log('folder     files   lines            branches         ');
for (const [folder, s] of sums) {
  if (s.files === 0) continue;
  const lines = pct(s.lines);
  const branches = pct(s.branches);
  const held = LIBRARY.includes(folder);
  const below = held && (lines < TARGET.lines || branches < TARGET.branches);
  if (below) missed.push(folder);
  const cell = (p, [c, t]) => `${p.toFixed(1).padStart(5)}% ${`${c}/${t}`.padEnd(10)}`;
  console.log(
    `${folder.padEnd(10)} ${String(s.files).padStart(5)}   ${cell(lines, s.lines)} ${cell(branches, s.branches)} ${held ? (below ? 'BELOW TARGET' : 'ok') : '(service)'}`,
  );
}
console.log('\nPer file: coverage/index.html');
if (missed.length) console.log(`Below target: ${missed.join(', ')}`);
process.exitCode = run.status !== 0 || missed.length ? 1 : 0;
