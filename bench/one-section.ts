// `node --import tsx bench/one-section.ts <sustained|peers|http> [--quick] [--sources] [--cpu-prof DIR]`: one of the newer
// sections alone, on the broker at AMQP_URL (default 127.0.0.1:5672) in a vhost of its own, its
// result printed as JSON. For working on one figure; `npm run bench` remains the run of record.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_AMQP_URL, ManagementClient, withVhost } from '../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../topology/index.ts';
import { profileServicesInto, runServicesFromBuild } from './lib/procs.ts';
import { benchSizes, DEFAULT_BENCH_DATABASE_URL } from './lib/sizes.ts';
import { benchPeers } from './sections/peers.ts';
import { benchHttp } from './sections/services.ts';
import { benchSustainedStores } from './sections/sustained.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, sources: { type: 'boolean', default: false }, 'cpu-prof': { type: 'string' } },
});
const which = positionals[0];
const sections = ['sustained', 'peers', 'http'];
if (!which || !sections.includes(which)) {
  console.error(`usage: bench/one-section.ts <${sections.join('|')}> [--quick] [--cpu-prof DIR]`);
  process.exit(2);
}
const size = benchSizes(values.quick);
if (!values.sources) runServicesFromBuild();
// Every process the section starts (the API, each worker) writes a .cpuprofile into the folder
// when it exits at the section's end; bench/profile-top.ts reads them.
if (values['cpu-prof']) profileServicesInto(resolve(values['cpu-prof']));
const vhost = `warren-bench-${randomBytes(3).toString('hex')}`;
const url = withVhost(process.env.AMQP_URL?.split(',')[0] ?? DEFAULT_AMQP_URL, vhost);
const mgmt = new ManagementClient({ amqpUrl: url, managementUrl: process.env.AMQP_MANAGEMENT_URL });
const compiled = loadCompiledTopology();
if (!(await mgmt.available())) {
  console.error(
    `bench/one-section.ts needs the RabbitMQ management API (a throwaway vhost, queue depths), and ${mgmt.baseUrl} did not answer; set AMQP_MANAGEMENT_URL.`,
  );
  process.exit(1);
}
try {
  await applyTopology({ amqpUrl: url, managementUrl: mgmt.baseUrl, compiled });
  let result: unknown;
  if (which === 'sustained')
    result = await benchSustainedStores({
      url,
      mgmt,
      port: 3950,
      postgresPort: 3955,
      databaseUrl: process.env.BENCH_DATABASE_URL ?? DEFAULT_BENCH_DATABASE_URL,
      rates: size.sustainedRates,
      stepSeconds: size.sustainedStepSeconds,
      warmupSeconds: size.sustainedWarmupSeconds,
      connections: size.sustainedConnections,
    });
  else if (which === 'peers') result = await benchPeers(url, mgmt, compiled, 3960, size.peers, process.env.BENCH_DATABASE_URL ?? DEFAULT_BENCH_DATABASE_URL);
  else
    result = await benchHttp(url, { seconds: size.httpSeconds, warmupSeconds: size.httpWarmupSeconds, connections: 50, port: 3900, rounds: size.httpRounds });
  console.log(JSON.stringify(result, (_k, v) => (v === Number.POSITIVE_INFINITY ? '+Inf' : v), 2));
} finally {
  await mgmt.delete(mgmt.path('vhosts', vhost)).catch(() => undefined);
}
process.exit(0);
