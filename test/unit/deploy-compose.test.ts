import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DCLinter } from 'dclint';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse } from 'yaml';
import { readApiConfig } from '../../api/index.ts';
import { readWorkerConfig } from '../../worker/index.ts';
import { ROOT } from '../helpers/warren-process.ts';

/**
 * Issue 15: deploy/compose.yaml cannot be run here (no registry for the rabbitmq, postgres and
 * prometheus images), so it is validated: against the Compose Specification's JSON schema (the
 * one dclint ships and checks with, besides its own rules), and for what makes the stack work:
 * a 3-node cluster, the topology job the services wait for, replicas, healthchecks, scrape
 * targets, and an environment Warren's own config readers accept.
 */

const COMPOSE = join(ROOT, 'deploy/compose.yaml');
const text = readFileSync(COMPOSE, 'utf8');

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  ports?: string[];
  volumes?: string[];
  hostname?: string;
  stop_grace_period?: string;
  restart?: string;
}
const compose = parse(text, { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const svc = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`deploy/compose.yaml has no service "${name}"`);
  return s;
};

/** Compose's `${VAR:-default}` interpolation with nothing set: the defaults a fresh clone runs with. */
const interpolate = (env: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));

interface LintMessage {
  rule: string;
  type: 'error' | 'warning';
  line: number;
  message: string;
}

/** Stylistic rules (key and service order, quote style) are off; every rule about meaning is on. */
const lint = (path: string) =>
  new DCLinter({
    rules: {
      'service-keys-order': 0,
      'services-alphabetical-order': 0,
      'top-level-properties-order': 0,
      'service-dependencies-alphabetical-order': 0,
      'require-quotes-in-ports': 0,
    },
    quiet: false,
    debug: false,
    exclude: [],
  }).lintFiles([path], false)[0] as { messages: LintMessage[] } | undefined;

test('compose.yaml is valid against the Compose Specification schema and passes dclint', () => {
  const result = lint(COMPOSE);
  assert.ok(result, 'dclint returned no result');
  const errors = result.messages.filter((m) => m.type === 'error');
  assert.equal(errors, [], errors.map((m) => `${m.line}: ${m.message} (${m.rule})`).join('\n'));
});

test('the validator rejects a misspelt key (the schema check is live)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-compose-'));
  try {
    const bad = join(dir, 'compose.yaml');
    writeFileSync(bad, text.replace('stop_grace_period:', 'stop_grace_perod:'));
    const errors = lint(bad)?.messages.filter((m) => m.type === 'error') ?? [];
    assert.ok(
      errors.some((m) => m.rule === 'invalid-schema'),
      'a misspelt service key passed',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a 3-node RabbitMQ cluster with management, one cookie, pause_minority and healthchecks', () => {
  const conf = readFileSync(join(ROOT, 'deploy/rabbitmq/rabbitmq.conf'), 'utf8');
  assert.match(conf, /^cluster_partition_handling = pause_minority$/m);
  for (const n of [1, 2, 3]) {
    const node = svc(`rabbitmq-${n}`);
    assert.match(node.image ?? '', /^rabbitmq:3\.\d+-management$/);
    assert.is(node.hostname, `rabbitmq-${n}`);
    assert.match(conf, new RegExp(`^cluster_formation\\.classic_config\\.nodes\\.${n} = rabbit@rabbitmq-${n}$`, 'm'));
    assert.ok(
      node.volumes?.some((v) => v.startsWith('./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/')),
      `rabbitmq-${n} does not mount the cluster config`,
    );
    assert.equal(node.healthcheck?.test.slice(0, 2), ['CMD', 'rabbitmq-diagnostics']);
    assert.is(node.environment?.RABBITMQ_ERLANG_COOKIE, svc('rabbitmq-1').environment?.RABBITMQ_ERLANG_COOKIE);
  }
});

test('the topology job runs once, after the three nodes are healthy; API and workers wait for it', () => {
  const topology = svc('topology');
  assert.equal(topology.command, ['topology', 'apply']);
  assert.is(topology.restart, 'no');
  for (const n of [1, 2, 3]) assert.is(topology.depends_on?.[`rabbitmq-${n}`]?.condition, 'service_healthy');
  for (const name of ['api', 'worker']) {
    assert.is(svc(name).depends_on?.topology?.condition, 'service_completed_successfully', `${name} does not wait for the topology job`);
    assert.is(svc(name).image, 'warren:latest');
  }
  assert.is(svc('api').depends_on?.postgres?.condition, 'service_healthy');
  assert.equal(svc('postgres').healthcheck?.test.slice(0, 2), ['CMD', 'pg_isready']);
});

test('two API replicas on PostgreSQL, scalable workers that drain before they are killed', () => {
  const api = svc('api');
  assert.equal(api.command, ['api']);
  assert.is(api.deploy?.replicas, 2);
  assert.ok(api.ports?.includes('127.0.0.1:3000-3001:3000'), 'one host port per API replica');
  const apiConfig = readApiConfig(interpolate(api.environment));
  assert.is(apiConfig.port, 3000);
  assert.ok(apiConfig.databaseUrl?.startsWith('postgresql://warren:'), 'the API replicas share PostgreSQL');
  assert.equal(
    apiConfig.amqpUrls.map((u) => new URL(u).host),
    ['rabbitmq-1:5672', 'rabbitmq-2:5672', 'rabbitmq-3:5672'],
  );
  assert.equal(api.healthcheck?.test, ['CMD', 'node', '/app/healthcheck.js']);

  const worker = svc('worker');
  assert.equal(worker.command, ['worker', '--replicas', '1']);
  assert.ok((worker.deploy?.replicas ?? 0) >= 1);
  const workerConfig = readWorkerConfig(interpolate(worker.environment));
  assert.is(workerConfig.amqpUrls.length, 3);
  const grace = /^(\d+)s$/.exec(worker.stop_grace_period ?? '');
  assert.ok(grace, 'worker stop_grace_period in seconds');
  assert.ok(Number(grace[1]) * 1000 > workerConfig.shutdownGraceMs + 5000, 'stop_grace_period must exceed the drain time');
  assert.equal(worker.healthcheck?.test, ['CMD', 'node', '/app/healthcheck.js']);
});

test('Prometheus scrapes every API and worker replica where they serve /metrics', () => {
  const prometheus = svc('prometheus');
  assert.ok(prometheus.volumes?.some((v) => v.startsWith('./prometheus/prometheus.yml:')));
  const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; type: string; port: number }[] }[];
  };
  const dnsTarget = (job: string) => config.scrape_configs.find((c) => c.job_name === job)?.dns_sd_configs?.[0];
  assert.equal(dnsTarget('warren-api'), { names: ['api'], type: 'A', port: Number(svc('api').environment?.PORT) });
  assert.equal(dnsTarget('warren-worker'), { names: ['worker'], type: 'A', port: readWorkerConfig(interpolate(svc('worker').environment)).metricsPort });
});

test.run();
