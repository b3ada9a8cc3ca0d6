import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { TopologyError, type TopologyProblem } from '../core/index.ts';
import { checkJobs } from './jobs.ts';
import { type TopologyFile, topologyFileSchema } from './schema.ts';
import { lossProblems } from './validate.ts';

/** A validated topology: the merged declarations of one or more files. */
export interface Topology {
  exchanges: Record<string, TopologyFile['exchanges'][string] & { file: string }>;
  queues: Record<string, TopologyFile['queues'][string] & { file: string }>;
  bindings: Array<TopologyFile['bindings'][number] & { file: string }>;
  files: string[];
}

/** The topology files a path names: the file itself, or every .yaml/.yml file in a folder. */
export function topologyFiles(path: string): string[] {
  const abs = resolve(path);
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(abs);
  } catch {
    throw new TopologyError([{ file: path, path: '', message: 'no such file or folder (set TOPOLOGY to a topology file or folder)' }]);
  }
  if (!st.isDirectory()) return [abs];
  const files = readdirSync(abs)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(abs, f));
  if (files.length === 0) throw new TopologyError([{ file: path, path: '', message: 'folder holds no .yaml topology files' }]);
  return files;
}

/** Reads, parses and validates topology files; throws a TopologyError listing every problem. */
export function loadTopology(path: string): Topology {
  const files = topologyFiles(path);
  return parseTopology(files.map((f) => ({ file: displayPath(f), text: readFileSync(f, 'utf8') })));
}

/** Pure: parses and validates file texts (already read) into one topology. */
export function parseTopology(sources: ReadonlyArray<{ file: string; text: string }>): Topology {
  const problems: TopologyProblem[] = [];
  const topo: Topology = { exchanges: {}, queues: {}, bindings: [], files: sources.map((s) => s.file) };
  for (const { file, text } of sources) {
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const at = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
        problems.push({ file, path: at, message: `invalid YAML: ${e.message.split('\n')[0]}` });
      }
      continue;
    }
    const raw: unknown = doc.toJS() ?? {};
    const parsed = topologyFileSchema.safeParse(raw);
    if (!parsed.success) {
      problems.push(...parsed.error.issues.map((i) => issueToProblem(file, i)));
      continue;
    }
    for (const [n, ex] of Object.entries(parsed.data.exchanges)) {
      if (topo.exchanges[n]) problems.push({ file, path: `exchanges.${n}`, message: `exchange already declared in ${topo.exchanges[n].file}` });
      else topo.exchanges[n] = { ...ex, file };
    }
    for (const [n, q] of Object.entries(parsed.data.queues)) {
      if (topo.queues[n]) problems.push({ file, path: `queues.${n}`, message: `queue already declared in ${topo.queues[n].file}` });
      else topo.queues[n] = { ...q, file };
    }
    for (const b of parsed.data.bindings) topo.bindings.push({ ...b, file });
  }
  if (problems.length === 0) problems.push(...checkReferences(topo), ...checkJobs(topo), ...lossProblems(topo));
  if (problems.length > 0) throw new TopologyError(problems);
  return topo;
}

/** Dangling references and combinations the broker would refuse. */
function checkReferences(topo: Topology): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const exchangeNames = Object.keys(topo.exchanges);
  const known = (ex: string) => ex === '' || ex.startsWith('amq.') || topo.exchanges[ex] !== undefined;
  for (const [qn, q] of Object.entries(topo.queues)) {
    const binds = q.bind === undefined ? [] : Array.isArray(q.bind) ? q.bind : [q.bind];
    binds.forEach((b, i) => {
      if (!known(b.exchange)) {
        const at = Array.isArray(q.bind) ? `queues.${qn}.bind[${i}].exchange` : `queues.${qn}.bind.exchange`;
        problems.push({ file: q.file, path: at, message: `expected a declared exchange (one of: ${exchangeNames.join(', ') || 'none'}), got "${b.exchange}"` });
      }
    });
    if (q.type === 'quorum' && !q.durable) {
      problems.push({ file: q.file, path: `queues.${qn}.durable`, message: 'expected true: quorum queues are always durable' });
    }
    if (q.type === 'classic' && q.deliveryLimit !== undefined) {
      problems.push({ file: q.file, path: `queues.${qn}.deliveryLimit`, message: 'expected only on quorum queues (classic queues have no delivery limit)' });
    }
    if (q.overflow === 'reject-publish-dlx' && q.type === 'quorum') {
      problems.push({
        file: q.file,
        path: `queues.${qn}.overflow`,
        message: 'expected reject-publish or drop-head: quorum queues do not support reject-publish-dlx',
      });
    }
    if (q.retry && q.retry.delays.length > q.retry.maxAttempts - 1) {
      problems.push({
        file: q.file,
        path: `queues.${qn}.retry.delays`,
        message: `expected at most maxAttempts - 1 = ${q.retry.maxAttempts - 1} delays (attempt N waits in tier N before attempt N+1)`,
      });
    }
    if (q.retry && !q.deadLetter) {
      problems.push({
        file: q.file,
        path: `queues.${qn}.deadLetter`,
        message: 'expected deadLetter: true with retry (messages past maxAttempts need a dead-letter queue)',
      });
    }
  }
  topo.bindings.forEach((b, i) => {
    if (!known(b.exchange)) problems.push({ file: b.file, path: `bindings[${i}].exchange`, message: `expected a declared exchange, got "${b.exchange}"` });
    if (!topo.queues[b.queue]) problems.push({ file: b.file, path: `bindings[${i}].queue`, message: `expected a declared queue, got "${b.queue}"` });
  });
  return problems;
}

function issueToProblem(file: string, issue: z.core.$ZodIssue): TopologyProblem {
  const path = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    if (keys.length === 1 && keys[0] !== undefined) path.push(keys[0]);
    message = `unknown key${keys.length > 1 ? `s ${keys.join(', ')}` : ''}; expected one of the documented keys (see topology/README.md)`;
  }
  return { file, path: formatPath(path), message };
}

/** `queues.processing.requests.retry.delays[1]` style. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel.startsWith('..') ? abs : rel;
}
