#!/usr/bin/env node
// `npm run image`: builds warren:<version> from the Dockerfile and tags warren:latest, with podman
// or docker, whichever runs (CONTAINER_ENGINE picks one). The base image (node:20-bookworm-slim)
// is used when present, else pulled; when the pull fails (no registry reachable) and podman is the
// engine, scripts/base-image.sh builds a local stand-in under the same name, once.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const BASE = 'docker.io/library/node:20-bookworm-slim';
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const ok = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 60_000 }).status === 0;
const out = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8', cwd: root }).stdout?.trim() ?? '';

function fail(message) {
  process.stderr.write(`image: ${message}\n`);
  process.exit(1);
}

function pickEngine() {
  const asked = process.env.CONTAINER_ENGINE;
  if (asked) return ok(asked, ['info']) ? asked : fail(`CONTAINER_ENGINE=${asked} does not run (\`${asked} info\` failed)`);
  for (const engine of ['podman', 'docker']) if (ok(engine, ['info'])) return engine;
  return fail('neither podman nor docker runs here; install one (Debian: apt-get install -y podman runc)');
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}`);
}

function ensureBase(engine) {
  if (ok(engine, ['image', 'inspect', BASE])) return `present (${BASE})`;
  if (spawnSync(engine, ['pull', BASE], { stdio: 'inherit', timeout: 300_000 }).status === 0) return `pulled (${BASE})`;
  if (engine !== 'podman' && engine !== 'docker') fail(`cannot pull ${BASE}`);
  process.stdout.write(`image: ${BASE} cannot be pulled; building the local stand-in (scripts/base-image.sh)\n`);
  run('bash', [join(root, 'scripts/base-image.sh')], { ...process.env, CONTAINER_ENGINE: engine });
  return `local stand-in (${BASE}, scripts/base-image.sh)`;
}

const engine = pickEngine();
const base = ensureBase(engine);
const tag = `warren:${version}`;
const started = Date.now();
// podman: the docker image format keeps HEALTHCHECK (OCI has no field for it), and builds need
// the host network to reach the npm registry in this sandbox (../shared/machine-notes.md).
const engineArgs = engine === 'podman' ? ['--format', 'docker', '--network', 'host'] : [];
const revision = out('git', ['rev-parse', '--short', 'HEAD']) || 'unknown';
const buildArgs = ['--build-arg', `VERSION=${version}`, '--build-arg', `REVISION=${revision}`];
run(engine, ['build', ...engineArgs, ...buildArgs, '-t', tag, '-t', 'warren:latest', '-f', 'Dockerfile', '.']);
const seconds = ((Date.now() - started) / 1000).toFixed(0);
const size = Number(out(engine, ['image', 'inspect', tag, '--format', '{{.Size}}']));
process.stdout.write(`image: built ${tag} and warren:latest with ${engine} in ${seconds} s; ${(size / 1e6).toFixed(0)} MB; base ${base}\n`);
