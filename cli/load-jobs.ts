import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/index.ts';
import { isJobDefinition, type JobDefinition } from '../worker/index.ts';

/** Modules a folder of handlers holds: compiled JavaScript (and TypeScript when a loader runs it). */
const MODULE = /\.(m|c)?(js|ts)$/;
const SKIP = /\.d\.(m|c)?ts$|\.(test|spec)\.(m|c)?(js|ts)$/;

/**
 * The jobs `--handler` names: a module whose default export is defineJob(...) (or an array of
 * them), or a folder of such modules (not recursive, in name order). Errors name the file and
 * what was expected.
 */
export async function loadJobs(path: string): Promise<JobDefinition[]> {
  const abs = resolve(path);
  let files: string[];
  try {
    files = statSync(abs).isDirectory()
      ? readdirSync(abs)
          .filter((f) => MODULE.test(f) && !SKIP.test(f))
          .sort()
          .map((f) => join(abs, f))
      : [abs];
  } catch {
    throw new ConfigError('--handler', `no such file or folder: ${path}`);
  }
  if (files.length === 0) throw new ConfigError('--handler', `${path} holds no handler modules (.js, .mjs)`);
  const jobs: JobDefinition[] = [];
  for (const file of files) {
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (err) {
      throw new ConfigError('--handler', `${file} could not be loaded: ${(err as Error).message}`);
    }
    const exported = Array.isArray(mod.default) ? mod.default : [mod.default];
    if (exported.length === 0 || !exported.every(isJobDefinition)) {
      throw new ConfigError('--handler', `${file}: expected a default export of defineJob({ queue, handler }) or an array of them`);
    }
    jobs.push(...exported);
  }
  return jobs;
}
