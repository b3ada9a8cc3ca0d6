#!/usr/bin/env node
// Runs each uvu test file in its own process (isolation: a suite that leaks a handle cannot hang
// the rest), one at a time (they share one broker and two cores), and prints uvu's totals
// summed up, then the line CI reads: "N passed, N failed".
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const which = process.argv[2]; // unit | integration | a file | undefined (all)
const filter = process.argv[3];
const FILE_TIMEOUT_MS = Number(process.env.TEST_FILE_TIMEOUT_MS ?? 240_000);

function walk(dir) {
  return readdirSync(dir)
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : /\.test\.ts$/.test(f) ? [p] : [];
    })
    .sort();
}

let files;
if (which?.endsWith('.ts')) files = [join(root, which)];
else if (which) files = walk(join(root, 'test', which));
else files = [...walk(join(root, 'test', 'unit')), ...walk(join(root, 'test', 'integration'))];
if (filter) files = files.filter((f) => f.includes(filter));

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const file of files) {
  const rel = relative(root, file);
  const started = Date.now();
  const { code, out, timedOut } = await runFile(file);
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    failed += 1;
    failures.push(`${rel}: ${timedOut ? `timed out after ${FILE_TIMEOUT_MS} ms` : `exited ${code} without uvu totals`}`);
    console.log(`✘ ${rel} (${secs}s): no totals`);
    continue;
  }
  passed += ok;
  failed += total - ok;
  skipped += skip;
  if (total - ok > 0 || (code !== 0 && !timedOut)) failures.push(`${rel}: ${total - ok} failed`);
  if (code !== 0 && total === ok) {
    failed += 1;
    failures.push(`${rel}: exited ${code} after its tests passed`);
  }
  console.log(`${total === ok && code === 0 ? '✔' : '✘'} ${rel} (${secs}s): ${ok}/${total} passed${skip ? `, ${skip} skipped` : ''}`);
}
console.log('');
if (failures.length) console.log(`Failures:\n  ${failures.join('\n  ')}\n`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;

function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    let timedOut = false;
    const onData = (d) => {
      out += d;
      process.stdout.write(d);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => process.stderr.write(d));
    let graceTimer;
    // A file may ask for more time with a `// test-timeout-ms: N` line near its top.
    const asked = Number(/test-timeout-ms:\s*(\d+)/.exec(readFileSync(file, 'utf8').slice(0, 2000))?.[1] ?? 0);
    const limit = Math.max(FILE_TIMEOUT_MS, asked);
    const timer = setTimeout(() => {
      timedOut = true;
      console.log(`  (${relative(root, file)} timed out after ${limit} ms; stopped)`);
      child.kill('SIGKILL');
    }, limit);
    // uvu prints its totals when the suites are done; a file that then keeps running has leaked
    // a handle: it is stopped after a grace period and reported.
    const watch = setInterval(() => {
      if (/Duration:/.test(out) && !graceTimer) {
        graceTimer = setTimeout(() => {
          console.log(`  (warning: ${relative(root, file)} did not exit after its tests; stopped)`);
          child.kill('SIGKILL');
        }, 10_000);
      }
    }, 200);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      clearInterval(watch);
      resolve({ code: code ?? (signal && /Duration:/.test(out) && !timedOut ? 0 : 1), out, timedOut });
    });
  });
}
