// Runs only the enqueue section of the bench (npm run bench runs it with the rest): a quick look
// at producer.enqueue against raw amqplib in one process, Warren from the build as in the bench
// (`--sources`: through tsx instead).
import { randomBytes } from 'node:crypto';
import { DEFAULT_AMQP_URL, ManagementClient, vhostOf, withVhost } from '../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../topology/index.ts';
import { medianRound, runRounds } from './lib/pair-rounds.ts';
import { runServicesFromBuild } from './lib/procs.ts';
import { benchEnqueue } from './sections/amqp.ts';

if (!process.argv.includes('--sources')) runServicesFromBuild();
const url = withVhost(process.env.AMQP_URL?.split(',')[0] ?? DEFAULT_AMQP_URL, `warren-bench-enqueue-${randomBytes(3).toString('hex')}`);
const mgmt = new ManagementClient({ amqpUrl: url, managementUrl: process.env.AMQP_MANAGEMENT_URL });
const compiled = loadCompiledTopology();
await applyTopology({ amqpUrl: url, managementUrl: mgmt.baseUrl, compiled });
try {
  // The side that runs first alternates, as in npm run bench.
  const all = await runRounds(Number(process.env.ROUNDS ?? 5), (order) => benchEnqueue(url, compiled, 40_000, 256, 256, order), true);
  for (const [i, r] of all.entries())
    console.log(`round ${i + 1} (${r.order}): producer.enqueue ${Math.round(r.warren)}/s, raw ${Math.round(r.raw)}/s, ratio ${(r.warren / r.raw).toFixed(2)}`);
  const median = medianRound(all);
  console.log(
    `median round: producer.enqueue ${Math.round(median.warren)}/s, raw ${Math.round(median.raw)}/s, ratio ${(median.warren / median.raw).toFixed(2)}`,
  );
} finally {
  await mgmt.delete(mgmt.path('vhosts', vhostOf(url)));
}
