#!/usr/bin/env node
// The image's HEALTHCHECK. One image runs every role, so this finds which one the container runs
// (the `warren <command>` process, under tini) and probes what that role serves: the API's
// /healthz on PORT, a worker's (or its supervisor's) /metrics on WORKER_METRICS_PORT. A one-shot
// command (topology apply, dlq ...) and a worker without a metrics port have nothing to probe.
import { readdirSync, readFileSync } from 'node:fs';

function warrenCommand() {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // the process ended while we looked
    }
    const at = argv.findIndex((a) => a.endsWith('/warren.js'));
    if (at >= 0) return argv[at + 1];
  }
  return undefined;
}

function probeUrl(command) {
  if (command === 'api') return `http://127.0.0.1:${process.env.PORT || 3000}/healthz`;
  if (command === 'worker') {
    const port = (process.env.WORKER_METRICS_PORT ?? '').trim() || '9464';
    return port === 'off' || port === '0' ? undefined : `http://127.0.0.1:${port}/metrics`;
  }
  return undefined;
}

const url = probeUrl(warrenCommand());
if (!url) process.exit(0);
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(8000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  process.exit(0);
} catch (err) {
  process.stderr.write(`unhealthy: ${url}: ${err.message}\n`);
  process.exit(1);
}
