import { fileURLToPath } from 'node:url';

/**
 * The Warren code a section runs inside the bench's own process (the producer, the confirm
 * publisher, an in-process worker): compiled from dist/ once runServicesFromBuild() built it, as
 * a user runs it from the installed package, and from the sources under `--sources`.
 *
 * Why it matters: the bench itself runs under tsx, whose esbuild transform keeps function names
 * (`keepNames`): every closure Warren creates per message then also pays an
 * Object.defineProperty (`__name`). In a profile of the enqueue section that was 4-5% of the
 * process's time, and none of it exists in the compiled package; the raw amqplib loops it is
 * compared with create almost no named closures, so the sources run measured tsx, not Warren.
 */
export interface WarrenModules {
  amqp: typeof import('../../amqp/index.ts');
  core: typeof import('../../core/index.ts');
  producer: typeof import('../../producer/index.ts');
  worker: typeof import('../../worker/index.ts');
}

let loaded: Promise<WarrenModules> | undefined;

export function warren(): Promise<WarrenModules> {
  loaded ??= load(process.env.WARREN_FROM_BUILD === '1');
  return loaded;
}

async function load(fromBuild: boolean): Promise<WarrenModules> {
  const one = (folder: string) => {
    const path = fromBuild ? `../../dist/${folder}/index.js` : `../../${folder}/index.ts`;
    return import(fileURLToPath(new URL(path, import.meta.url)));
  };
  const [amqp, core, producer, worker] = await Promise.all([one('amqp'), one('core'), one('producer'), one('worker')]);
  return { amqp, core, producer, worker };
}
