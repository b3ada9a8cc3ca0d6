#!/usr/bin/env node
// Runs each uvu test file in its own process (isolation: a suite that leaks a handle cannot hang
// the rest), and prints uvu's totals summed up, then the line CI reads: "N passed, N failed".
// Files run one at a time (they share one broker and two cores), except those marked
// `// test-lane: <name>`: each named lane runs its files one at a time beside the main lane. The
// lanes: `chaos` (the loopback scenarios, then the package build), `network` (the namespaced
// scenarios, then partition's self-check: both build namespace id p), and `side` (the image
// build, kill-broker's self-check, and the dead-letter and PGlite-thread files, which share
// nothing with the main lane but the broker, each in a vhost of its own). The lanes mostly wait
// on private brokers, timeouts and podman; CI's wall time is the longest lane's. `.ci/run` on a
// fresh clone with the image built from nothing, 2026-12-05: 940 s with three lanes (chaos, with
// the image, 901 s), 771 s with these four (side 733, main ~720, chaos 625, network 541). A
// file's output is printed when it ends, so the lanes do not interleave. TEST_LANES=1 runs
// everything in one lane. The unit files run together in one process (scripts/uvu-batch.mjs, as
// uvu's own CLI runs a folder): they start no broker nor timer that outlives them, and a process
// per file cost ~3 s of start-up each on busy cores (two minutes in CI). TEST_ISOLATE=1 runs them
// one per process too.
//
// The processes the tests start through bin/warren.js (API, workers, CLI commands, the chaos
// scenarios' systems) run the compiled build, as an installed package does: `npm run build` first
// (~3 s), then WARREN_FROM_BUILD=1. Through tsx each of those processes cost ~1.2 CPU-seconds more
// to start (its loader hooks thread), a few hundred starts per run on two cores. The test files
// themselves, and what they import, still run from the TypeScript sources. TEST_FROM_SOURCE=1 runs
// every process from the sources (coverage does).
import { spawn, spawnSync } from 'node:child_process';
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

const unitDir = join(root, 'test', 'unit');
const fromBuild = process.env.TEST_FROM_SOURCE !== '1' && files.some((f) => !f.startsWith(unitDir));
if (fromBuild) {
  const build = spawnSync(process.execPath, [join(root, 'scripts', 'build.js')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (build.status !== 0) {
    console.log('npm run build failed: the processes the tests start run the build (TEST_FROM_SOURCE=1 runs them from the sources)');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
/** A `// <name>: <value>` line near the top of a test file (test-lane, test-timeout-ms). */
const directive = (file, name) => new RegExp(`^// ${name}:\\s*(\\S+)`, 'm').exec(readFileSync(file, 'utf8').slice(0, 2000))?.[1];
const laneOf = (file) => directive(file, 'test-lane') ?? 'main';
const units = process.env.TEST_ISOLATE === '1' ? [] : files.filter((f) => f.startsWith(unitDir));
/** A job: one test file, or the unit files as one batch (`{ batch: [...] }`). */
const jobs = units.length > 1 ? [{ batch: units }, ...files.filter((f) => !units.includes(f))] : files;
const lanes = new Map();
for (const job of jobs) {
  const lane = process.env.TEST_LANES === '1' || typeof job !== 'string' ? 'main' : laneOf(job);
  lanes.set(lane, [...(lanes.get(lane) ?? []), job]);
}
const buffered = lanes.size > 1;
await Promise.all(
  [...lanes.values()].map(async (laneFiles) => {
    for (const file of laneFiles) await runAndCount(file);
  }),
);

async function runAndCount(file) {
  const rel = typeof file === 'string' ? relative(root, file) : `${relative(root, unitDir)}/ (${file.batch.length} files, one process)`;
  const started = Date.now();
  const { code, out, timedOut } = await runFile(file);
  if (buffered) process.stdout.write(out);
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    failed += 1;
    failures.push(`${rel}: ${timedOut ? `timed out after ${FILE_TIMEOUT_MS} ms` : `exited ${code} without uvu totals`}`);
    console.log(`✘ ${rel} (${secs}s): no totals`);
    return;
  }
  passed += ok;
  failed += total - ok;
  skipped += skip;
  // uvu counts a suite whose before hook threw as failed but prints no error for it (its runner's
  // finally returns over the throw): say so, since the log holds no FAIL line to read.
  const hookOnly = total - ok > 0 && !/FAIL/.test(out) ? ' (no FAIL line: a before/after hook threw, and uvu prints no error for that; wrap it in loud())' : '';
  if (total - ok > 0 || (code !== 0 && !timedOut)) failures.push(`${rel}: ${total - ok} failed${hookOnly}`);
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
    const args = typeof file === 'string' ? [file] : [join(root, 'scripts', 'uvu-batch.mjs'), ...file.batch];
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // WARREN_DIST_READY: dist/ is fresh and in use; scripts/build.js then leaves it as it is.
      env: { ...process.env, FORCE_COLOR: '0', ...(fromBuild ? { WARREN_FROM_BUILD: '1', WARREN_DIST_READY: '1' } : {}) },
    });
    let out = '';
    let timedOut = false;
    const note = (line) => {
      if (buffered) out += line;
      else process.stdout.write(line);
    };
    const onData = (d) => {
      out += d;
      if (!buffered) process.stdout.write(d);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => {
      if (buffered) out += d;
      else process.stderr.write(d);
    });
    let graceTimer;
    // A file may ask for more time with a `// test-timeout-ms: N` line near its top.
    const asked = typeof file === 'string' ? Number(directive(file, 'test-timeout-ms')) || 0 : 0;
    const limit = Math.max(FILE_TIMEOUT_MS, asked);
    const timer = setTimeout(() => {
      timedOut = true;
      note(`  (${typeof file === 'string' ? relative(root, file) : 'the unit files'} timed out after ${limit} ms; stopped)\n`);
      child.kill('SIGKILL');
    }, limit);
    // uvu prints its totals when the suites are done; a file that then keeps running has leaked
    // a handle: it is stopped after a grace period and reported.
    const watch = setInterval(() => {
      if (/Duration:/.test(out) && !graceTimer) {
        graceTimer = setTimeout(() => {
          note(`  (warning: ${typeof file === 'string' ? relative(root, file) : 'the unit files'} did not exit after its tests; stopped)\n`);
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
