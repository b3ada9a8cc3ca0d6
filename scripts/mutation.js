#!/usr/bin/env node
// `npm run mutation [-- <source file>...]`: StrykerJS over the pure decision code, on demand (not
// in CI). Each source file is mutated in a run of its own whose command runs only the unit tests
// of that file (one uvu process per mutant: its cost is mostly process start-up, so fewer test
// files means a faster run). Settings shared by all runs: stryker.config.json. Prints the score
// per file and in all, and every surviving mutant; the HTML reports land in reports/mutation/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Stryker } from '@stryker-mutator/core';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

/** Source file -> the unit test files (uvu pattern over test/unit) that check it. */
const TARGETS = {
  'worker/retry-policy.ts': '^(worker-retry-policy|retry-policy-edges)',
  'worker/failure-headers.ts': '^(worker-failure-headers|failure-headers-edges)',
  'worker/envelopes.ts': '^(worker-envelopes|envelope-copies)',
  'core/copy-properties.ts': '^(worker-envelopes|envelope-copies)',
  'api/dead-letters/fingerprint.ts': '^(dlq-decode|dead-letter-fingerprint)',
  'topology/plan.ts': '^topology-',
  'topology/compile.ts': '^topology-',
};
const TARGET = 80;

const asked = process.argv.slice(2);
const unknown = asked.filter((f) => !(f in TARGETS));
if (unknown.length) {
  console.error(`not a mutation target: ${unknown.join(', ')} (targets: ${Object.keys(TARGETS).join(', ')})`);
  process.exit(2);
}
const files = asked.length ? asked : Object.keys(TARGETS);

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const rows = [];
const survivors = [];
const started = Date.now();
mkdirSync('reports/mutation', { recursive: true });
for (const file of files) {
  const slug = file.replace(/[/.]/g, '-');
  const t0 = Date.now();
  const results = await new Stryker({
    configFile: 'stryker.config.json',
    mutate: [file],
    commandRunner: { command: `node scripts/mutation-tests.js "${TARGETS[file]}"` },
    reporters: ['html', 'json', 'progress-append-only'],
    htmlReporter: { fileName: `reports/mutation/${slug}.html` },
    jsonReporter: { fileName: `reports/mutation/${slug}.json` },
  }).runMutationTest();
  const count = (set) => results.filter((r) => set.has(r.status)).length;
  const detected = count(DETECTED);
  const undetected = count(UNDETECTED);
  rows.push({ file, mutants: results.length, detected, undetected, minutes: (Date.now() - t0) / 60_000 });
  for (const r of results.filter((x) => UNDETECTED.has(x.status))) {
    survivors.push(
      `${relative(root, r.fileName)}:${r.location.start.line}:${r.location.start.column + 1} ${r.mutatorName} -> ${JSON.stringify(r.replacement ?? '')}`,
    );
  }
}

const score = (d, u) => (d + u === 0 ? 100 : (100 * d) / (d + u));
const lines = ['', 'file                              mutants  killed  survived  score   minutes'];
for (const r of rows) {
  lines.push(
    `${r.file.padEnd(33)} ${String(r.mutants).padStart(7)} ${String(r.detected).padStart(7)} ${String(r.undetected).padStart(9)} ${score(r.detected, r.undetected).toFixed(1).padStart(6)}% ${r.minutes.toFixed(1).padStart(7)}`,
  );
}
const d = rows.reduce((s, r) => s + r.detected, 0);
const u = rows.reduce((s, r) => s + r.undetected, 0);
lines.push(
  `${'all'.padEnd(33)} ${String(d + u).padStart(7)} ${String(d).padStart(7)} ${String(u).padStart(9)} ${score(d, u).toFixed(1).padStart(6)}% ${((Date.now() - started) / 60_000).toFixed(1).padStart(7)}`,
);
lines.push(`(killed counts time-outs; mutants that fail to load are left out of the score; target ${TARGET}%)`);
if (survivors.length) lines.push('', 'Surviving mutants:', ...survivors.map((s) => `  ${s}`));
console.log(lines.join('\n'));
writeFileSync('reports/mutation/summary.txt', `${lines.join('\n')}\n`);
process.exitCode = score(d, u) >= TARGET ? 0 : 1;
