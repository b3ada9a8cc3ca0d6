import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAllDocuments } from 'yaml';
import { readApiConfig } from '../../api/index.ts';
import { DEFAULT_REQUESTS_QUEUE } from '../../topology/index.ts';
import { readWorkerConfig } from '../../worker/index.ts';
import { ROOT } from '../helpers/warren-process.ts';

/**
 * Issue 15: no cluster runs here, so deploy/kubernetes is validated. Every manifest, as written
 * and as rendered by kustomize (kubectl's built-in kustomize) for overlays/example and for the HPA
 * alternative, against the Kubernetes API schemas of kubernetes-models (KEDA and prometheus-operator
 * CRDs from their @kubernetes-models packages); then what makes it work: probes, drain time,
 * disruption budgets, the secret keys, resources, the scaler's queue and an environment Warren's
 * own config readers accept. (The models' schemas accept unknown fields: the checks below read
 * the fields that matter by name, so a misspelt one fails them.)
 */

const K8S = join(ROOT, 'deploy/kubernetes');
// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, read by path below
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: any };

const MODEL_PACKAGES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

/** Throws with the schema's errors, or when no schema is known for the kind: nothing goes unchecked. */
async function validate(m: Manifest, where: string): Promise<void> {
  const pkg = MODEL_PACKAGES[m.apiVersion];
  if (!pkg) throw new Error(`${where}: no schema for apiVersion ${m.apiVersion} (${m.kind})`);
  const mod = (await import(`${pkg}/${m.kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[m.kind];
  if (!Model) throw new Error(`${where}: no schema for ${m.apiVersion} ${m.kind}`);
  try {
    new Model(m).validate();
  } catch (err) {
    throw new Error(`${where}: ${m.kind} ${m.metadata?.name}: ${(err as Error).message}`);
  }
}

const docs = (text: string): Manifest[] => parseAllDocuments(text).map((d) => d.toJS() as Manifest);

/**
 * kustomize writes a long Secret value as base64 wrapped over lines (a YAML block scalar); the API
 * server's base64 decoder skips the line breaks, the models' "byte" format does not: unwrap them.
 */
function unwrapSecretData(m: Manifest): Manifest {
  if (m.kind !== 'Secret' || !m.data) return m;
  return { ...m, data: Object.fromEntries(Object.entries(m.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')])) };
}

function kustomize(dir: string): Manifest[] {
  try {
    return docs(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).map(unwrapSecretData);
  } catch (err) {
    const e = err as Error & { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('kubectl is not installed: its built-in kustomize renders the overlays (apt-get install kubectl)');
    throw new Error(`kubectl kustomize ${relative(ROOT, dir)} failed: ${e.stderr || e.message}`);
  }
}

const yamlFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) && e.name !== 'kustomization.yaml' ? [join(dir, e.name)] : [],
  );

const rendered = kustomize(join(K8S, 'overlays/example'));
const find = (kind: string, name: string, from = rendered): Manifest => {
  const m = from.find((d) => d.kind === kind && d.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name} in the rendered overlay`);
  return m;
};
const configMap = find('ConfigMap', 'warren').data as Record<string, string>;
const secret = Object.fromEntries(
  Object.entries(find('Secret', 'warren').data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
);
const api = find('Deployment', 'warren-api');
const worker = find('Deployment', 'warren-worker');

test('every manifest file is valid against the Kubernetes API schemas', async () => {
  const files = yamlFiles(K8S).filter((f) => !f.endsWith('.env'));
  assert.ok(files.length >= 9, `expected the manifests, found ${files.length}`);
  for (const file of files) for (const m of docs(readFileSync(file, 'utf8'))) await validate(m, relative(ROOT, file));
});

test('overlays/example renders, and every rendered object is valid', async () => {
  const kinds = rendered.map((m) => m.kind).sort();
  for (const kind of ['Deployment', 'Service', 'Job', 'Secret', 'ConfigMap', 'PodDisruptionBudget', 'ScaledObject', 'ServiceMonitor']) {
    assert.ok(kinds.includes(kind), `the overlay renders no ${kind}`);
  }
  for (const m of rendered) {
    await validate(m, 'overlays/example');
    assert.is(m.kind === 'Namespace' ? m.metadata.name : m.metadata.namespace, 'warren-example');
  }
  for (const d of [api, worker])
    for (const c of [...d.spec.template.spec.containers, ...d.spec.template.spec.initContainers]) assert.is(c.image, 'registry.example.com/warren:0.1.0');
});

test('the HPA alternative renders and is valid (base + components/hpa)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-kustomize-'));
  try {
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${relative(dir, join(K8S, 'base'))}]\ncomponents: [${relative(dir, join(K8S, 'components/hpa'))}]\n`,
    );
    const objects = kustomize(dir);
    for (const m of objects) await validate(m, 'base + components/hpa');
    const hpa = find('HorizontalPodAutoscaler', 'warren-worker', objects);
    assert.equal(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'warren-worker' });
    assert.is(hpa.spec.metrics[0].external.metric.selector.matchLabels.queue, DEFAULT_REQUESTS_QUEUE);
    assert.not.ok(
      objects.some((m) => m.kind === 'ScaledObject'),
      'KEDA and the HPA would fight over the replicas',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a broken manifest fails validation (the schema check is live)', async () => {
  const broken = structuredClone(worker);
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'nine-four-six-four';
  await validate(broken, 'broken').then(
    () => assert.unreachable('a string containerPort passed'),
    (err: Error) => assert.match(err.message, /containerPort/),
  );
});

test('API: /healthz liveness, /readyz readiness on the port it listens on; a Service in front', () => {
  const c = api.spec.template.spec.containers[0];
  assert.equal(c.args, ['api']);
  const port = c.ports.find((p: { name: string }) => p.name === 'http');
  assert.is(port.containerPort, readApiConfig({ ...configMap, ...secret }).port);
  assert.equal(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
  assert.equal(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
  const svc = find('Service', 'warren-api');
  assert.is(svc.spec.ports[0].targetPort, 'http');
  assert.equal(pick(api.spec.template.metadata.labels, svc.spec.selector), svc.spec.selector, 'the Service selects no API pod');
});

test('workers: terminationGracePeriodSeconds above the drain time; PDBs cover API and workers', () => {
  const grace = readWorkerConfig({ ...configMap, ...secret }).shutdownGraceMs;
  assert.ok(
    worker.spec.template.spec.terminationGracePeriodSeconds * 1000 >= grace + 10_000,
    `${worker.spec.template.spec.terminationGracePeriodSeconds} s vs a ${grace} ms drain`,
  );
  assert.equal(worker.spec.template.spec.containers[0].args, ['worker', '--replicas', '1']);
  for (const [pdb, d] of [
    ['warren-api', api],
    ['warren-worker', worker],
  ] as const) {
    const selector = find('PodDisruptionBudget', pdb).spec.selector.matchLabels as Record<string, string>;
    assert.equal(pick(d.spec.template.metadata.labels, selector), selector, `PDB ${pdb} selects no ${d.metadata.name} pod`);
  }
});

test('the topology job, the secret keys, resources and non-root for every container', () => {
  assert.equal(find('Job', 'warren-topology-apply').spec.template.spec.containers[0].args, ['topology', 'apply']);
  for (const key of ['AMQP_URL', 'DATABASE_URL', 'ADMIN_TOKEN']) assert.ok(secret[key], `Secret warren has no ${key}`);
  const apiConfig = readApiConfig({ ...configMap, ...secret });
  assert.is(apiConfig.amqpUrls.length, 3);
  assert.ok(apiConfig.databaseUrl && apiConfig.adminToken);
  const workloads = rendered.filter((m) => m.kind === 'Deployment' || m.kind === 'Job');
  for (const w of workloads) {
    const pod = w.spec.template.spec;
    assert.is(pod.securityContext?.runAsNonRoot, true, `${w.metadata.name} may run as root`);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      const where = `${w.metadata.name}/${c.name}`;
      for (const r of ['cpu', 'memory']) assert.ok(c.resources?.requests?.[r] && c.resources?.limits?.[r], `${where}: no ${r} request and limit`);
      assert.equal(
        c.envFrom.map((e: { configMapRef?: { name: string }; secretRef?: { name: string } }) => e.configMapRef?.name ?? e.secretRef?.name),
        ['warren', 'warren'],
        `${where} does not read the ConfigMap and the Secret`,
      );
    }
  }
});

test('KEDA scales the worker Deployment on the main queue depth; the ServiceMonitor finds API and workers', () => {
  const so = find('ScaledObject', 'warren-worker');
  assert.is(so.spec.scaleTargetRef.name, worker.metadata.name);
  const trigger = so.spec.triggers[0];
  assert.is(trigger.type, 'rabbitmq');
  assert.is(trigger.metadata.queueName, DEFAULT_REQUESTS_QUEUE);
  assert.is(trigger.metadata.mode, 'QueueLength');
  const auth = find('TriggerAuthentication', trigger.authenticationRef.name);
  const ref = auth.spec.secretTargetRef[0];
  assert.is(ref.parameter, 'host');
  assert.is(ref.name, 'warren');
  assert.match(secret[ref.key] ?? '', /^amqps?:\/\/[^,]+$/, 'KEDA takes one broker URL');

  const sm = find('ServiceMonitor', 'warren');
  const selected = rendered.filter((m) => m.kind === 'Service' && equalsSubset(m.metadata.labels, sm.spec.selector.matchLabels));
  for (const [service, port] of [
    ['warren-api', 'http'],
    ['warren-worker-metrics', 'metrics'],
  ]) {
    const s = selected.find((m) => m.metadata.name === service);
    assert.ok(s, `the ServiceMonitor does not select Service ${service}`);
    assert.ok(s.spec.ports.some((p: { name: string }) => p.name === port));
    assert.ok(sm.spec.endpoints.some((e: { port: string; path: string }) => e.port === port && e.path === '/metrics'));
  }
});

function pick(labels: Record<string, string>, keys: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(keys).map((k) => [k, labels[k] as string]));
}

function equalsSubset(labels: Record<string, string> | undefined, subset: Record<string, string>): boolean {
  return Object.entries(subset).every(([k, v]) => labels?.[k] === v);
}

test.run();
