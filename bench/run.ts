// `npm run bench [-- --quick]`: Warren against raw amqplib and a bare HTTP endpoint, on the same
// broker in the same run, reported as ratios (absolute figures drift on a shared machine).
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_AMQP_URL, LocalRabbitNode, ManagementClient, portAnswers, withVhost } from '../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../topology/index.ts';
import { medianRound, type Order, type Pair, runRounds } from './lib/pair-rounds.ts';
import { withPgSchema } from './lib/pg-schema.ts';
import { runServicesFromBuild } from './lib/procs.ts';
import { benchSizes, DEFAULT_BENCH_DATABASE_URL } from './lib/sizes.ts';
import { benchConsume, benchEnqueue, benchPublish } from './sections/amqp.ts';
import { benchOverload, FLAT_MAX_GROWTH_MB, FLAT_MAX_GROWTH_SHARE } from './sections/overload.ts';
import { benchPeers, type PeerComparison } from './sections/peers.ts';
import { benchE2e, benchHttp, benchScaling, type HttpComparison } from './sections/services.ts';
import { benchSustainedStores, type SustainedResult } from './sections/sustained.ts';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, sources: { type: 'boolean', default: false } } });
const quick = values.quick;
// The API and the workers run compiled, as deployed; `--sources` runs them through tsx instead.
if (!values.sources) runServicesFromBuild();
const size = benchSizes(quick);
/** PostgreSQL for the sustained run's second store (a schema of its own, dropped after). */
const databaseUrl = process.env.BENCH_DATABASE_URL ?? DEFAULT_BENCH_DATABASE_URL;
const began = Date.now();

let node: LocalRabbitNode | undefined;
let baseUrl = process.env.AMQP_URL?.split(',')[0];
if (!baseUrl) {
  if (await portAnswers(5672)) baseUrl = DEFAULT_AMQP_URL;
  else {
    node = new LocalRabbitNode({ nodeName: 'warren-bench@localhost', amqpPort: 5690, baseDir: `.warren/bench-rabbit-${process.pid}` });
    console.error('no broker on 5672: starting a private node on 5690');
    await node.start();
    baseUrl = node.url;
  }
}
const vhost = `warren-bench-${randomBytes(3).toString('hex')}`;
const url = withVhost(baseUrl, vhost);
const mgmt = new ManagementClient({ amqpUrl: url, managementUrl: node?.managementUrl ?? process.env.AMQP_MANAGEMENT_URL });
const compiled = loadCompiledTopology();
// The bench creates a throwaway vhost and reads the broker version and queue depths through the
// management API. Without it, the first AMQP connect to the missing vhost fails inside amqplib
// with "Expected ConnectionOpenOk; got <ConnectionClose ...>", which names nothing useful.
if (!(await mgmt.available())) {
  console.error(
    `npm run bench needs the RabbitMQ management API (it creates a throwaway vhost and reads queue depths through it), and ${mgmt.baseUrl} did not answer.\n` +
      'Enable the plugin on the broker (`rabbitmq-plugins enable rabbitmq_management`), or set AMQP_MANAGEMENT_URL to where the management API listens.',
  );
  if (node) await node.stop();
  process.exit(1);
}

const sectionSeconds: Record<string, number> = {};

/** Runs one section, announcing it and then its duration on stderr. */
async function section<T>(name: string, description: string, run: () => Promise<T>): Promise<T> {
  console.error(`${name}: ${description}`);
  const t0 = performance.now();
  try {
    return await run();
  } finally {
    sectionSeconds[name] = Math.round((performance.now() - t0) / 100) / 10;
    console.error(`  ${name}: ${sectionSeconds[name]} s`);
  }
}

/** A pair section's figures: the round whose ratio is the median, and every round. */
interface PairRounds extends Pair {
  /** warren / raw of the median round. */
  ratio: number;
  rounds: Array<Pair & { order?: Order }>;
}

/**
 * `rounds` rounds of a pair; with `alternate`, the side that runs first changes every round.
 * The round with the median ratio is reported (medianRound; on this shared machine one side's
 * figure drifted by 30% between rounds).
 */
async function rounds(run: (order: Order) => Promise<Pair>, alternate = false): Promise<PairRounds> {
  const all = await runRounds(size.rounds, run, alternate);
  const median = medianRound(all);
  return { warren: median.warren, raw: median.raw, ratio: median.warren / median.raw, rounds: all };
}

const ms = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(0));

/** A table row for one store's sustained ramp: the rate held and e2e p50/p99 at it. */
function sustainedRow(store: string, r: SustainedResult): string[] {
  const held = r.sustainedPerSecond;
  return [
    `| sustained e2e (API -> 2 workers -> store), ${store}: offered rate held, e2e p50 / p99 ms | ${held}/s, ${ms(r.p50Ms)} / ${ms(r.p99Ms)} | | | >= 1500/s, p99 < 1000 | ${held >= 1500 && (r.p99Ms ?? Infinity) < 1000 ? 'yes' : '**no**'} |`,
  ];
}

/** The per-step table of a sustained ramp. */
function stepTable(r: SustainedResult, store: string): string {
  const head = [
    `sustained ramp, ${store}:`,
    '| offered/s | accepted/s | processed/s | backlog at end | e2e p50 / p99 / p99.9 ms | HTTP p99 ms | sustained |',
    '|---|---|---|---|---|---|---|',
  ];
  const body = r.steps.map(
    (s) =>
      `| ${s.offeredPerSecond} | ${s.acceptedPerSecond.toFixed(0)} | ${s.processedPerSecond.toFixed(0)} | ${s.backlogAtEnd} | ${ms(s.e2eP50Ms)} / ${ms(s.e2eP99Ms)} / ${ms(s.e2eP999Ms)} | ${ms(s.httpP99Ms)} | ${s.holds ? 'yes' : `no: ${s.reasons.join('; ')}`} |`,
  );
  return [...head, ...body].join('\n');
}

try {
  await applyTopology({ amqpUrl: url, managementUrl: mgmt.baseUrl, compiled });
  const overview = await mgmt.get<{ rabbitmq_version?: string }>('/api/overview');
  console.error(`broker RabbitMQ ${overview?.rabbitmq_version ?? '?'}, vhost ${vhost}, ${quick ? 'quick' : 'full'} run`);

  const publish = await section('publish', 'raw amqplib vs Warren publisher (256 B, persistent, confirms, window 256)', () =>
    rounds((order) => benchPublish(url, size.messages, 256, 256, order), true),
  );
  const enqueue = await section('enqueue', 'raw amqplib vs producer.enqueue (the job of processing.requests, 256 B of data, window 256)', () =>
    rounds((order) => benchEnqueue(url, compiled, size.messages, 256, 256, order), true),
  );
  const consume = await section('consume', 'raw consume+ack vs worker runtime, no-op handler, no result (quorum, prefetch 100)', () =>
    rounds(() => benchConsume(url, compiled, size.messages, 100, 256, false)),
  );
  const consumeResults = await section('consume with results', 'raw consume+publish result+ack vs worker runtime (default mode)', () =>
    rounds(() => benchConsume(url, compiled, size.messages, 100, 256, true)),
  );
  const httpLoad = { seconds: size.httpSeconds, warmupSeconds: size.httpWarmupSeconds, connections: 50, rounds: size.httpRounds };
  const http = await section(
    'http',
    `autocannon, 50 connections, bare express and Warren's API (embedded store) ${size.httpSeconds} s each after ${size.httpWarmupSeconds} s of warm-up, ${size.httpRounds} round(s)`,
    () => benchHttp(url, { ...httpLoad, port: 3900 }),
  );
  const httpPostgres = await section('http postgres', `the same rounds with Warren's API on PostgreSQL (a schema of its own, dropped after)`, () =>
    withPgSchema(databaseUrl, (schema) => benchHttp(url, { ...httpLoad, port: 3905, apiEnv: { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema } })),
  );
  const overloadConnections = 200;
  const overload = await section(
    'overload',
    `a fresh API, no worker: 2x the accepted rate above over ${overloadConnections} connections for ${size.overloadSeconds} s, RSS sampled`,
    () =>
      benchOverload({
        url,
        mgmt,
        port: 3920,
        sustainablePerSecond: http.warren.acceptedPerSecond,
        seconds: size.overloadSeconds,
        warmupSeconds: size.overloadWarmupSeconds,
        maxWarmupSeconds: size.overloadMaxWarmupSeconds,
        connections: overloadConnections,
      }),
  );
  const e2e = await section('end to end', `one API, two workers, ${size.e2eSeconds} s of load from 50 clients`, () => benchE2e(url, size.e2eSeconds, 50, 3910));
  const sustained = await section(
    'sustained',
    `fixed offered rates ${size.sustainedRates.join(', ')}/s, ${size.sustainedStepSeconds} s each, through the API to the store (embedded, then PostgreSQL); stops at the first step not sustained`,
    () =>
      benchSustainedStores({
        url,
        mgmt,
        port: 3950,
        postgresPort: 3955,
        databaseUrl,
        rates: size.sustainedRates,
        stepSeconds: size.sustainedStepSeconds,
        warmupSeconds: size.sustainedWarmupSeconds,
        connections: size.sustainedConnections,
      }),
  );
  const peers = await section(
    'peers',
    `${size.peers.count} jobs of 256 B to stored results, 2 worker processes: producer.enqueue vs BullMQ queue.add on a durable private Redis, ${size.rounds} rounds alternating, the same with the API on PostgreSQL, then once on the machine's Redis`,
    () => benchPeers(url, mgmt, compiled, 3960, size.peers, databaseUrl),
  );
  const scaling = await section('scaling', '20 ms handler, concurrency 10, 1/2/4 replicas', () => benchScaling(url, size.scalingPerReplica, [1, 2, 4]));

  const ratio = (p: PairRounds) => p.ratio;
  const results = {
    when: new Date().toISOString(),
    quick,
    seconds: Math.round((Date.now() - began) / 1000),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      rabbitmq: overview?.rabbitmq_version,
    },
    consumeRatio: ratio(consume),
    consumeWithResultsRatio: ratio(consumeResults),
    publishRatio: ratio(publish),
    enqueueRatio: ratio(enqueue),
    // Against raw amqplib sending a bare message to the default exchange (the publish section's
    // baseline): the broker's cost of the job's exchange hop, mandatory flag and properties counts too.
    enqueueVsBarePublishRatio: enqueue.warren / publish.raw,
    httpRatio: http.warren.acceptedPerSecond / http.bare.acceptedPerSecond,
    httpP50Ms: http.warren.p50Ms,
    httpP99Ms: http.warren.p99Ms,
    httpNon2xx: http.warren.non2xx + http.warren.errors,
    httpPostgresRatio: 'value' in httpPostgres ? httpPostgres.value.warren.acceptedPerSecond / httpPostgres.value.bare.acceptedPerSecond : null,
    httpPostgresP99Ms: 'value' in httpPostgres ? httpPostgres.value.warren.p99Ms : null,
    e2ePerSecond: e2e.perSecond,
    e2eSustainedPerSecond: sustained.embedded.sustainedPerSecond,
    e2eP50Ms: sustained.embedded.p50Ms ?? null,
    e2eP99Ms: sustained.embedded.p99Ms ?? null,
    e2eSustainedPostgresPerSecond: 'skipped' in sustained.postgres ? null : sustained.postgres.sustainedPerSecond,
    e2eP99PostgresMs: 'skipped' in sustained.postgres ? null : (sustained.postgres.p99Ms ?? null),
    producerE2ePerSecond: peers.warren.e2ePerSecond,
    producerE2eP99Ms: peers.warren.e2eP99Ms ?? null,
    bullmqEnqueuePerSecond: peers.bullmqDurable.enqueuePerSecond,
    bullmqE2ePerSecond: peers.bullmqDurable.e2ePerSecond,
    bullmqE2eP99Ms: peers.bullmqDurable.e2eP99Ms ?? null,
    producerE2ePostgresPerSecond: 'skipped' in peers.postgres ? null : peers.postgres.warren.e2ePerSecond,
    producerE2ePostgresP99Ms: 'skipped' in peers.postgres ? null : (peers.postgres.warren.e2eP99Ms ?? null),
    apiPeakRssMb: http.apiLoadPeakRssMb,
    overloadOfferedPerSecond: overload.offeredPerSecond,
    overloadAchievedPerSecond: overload.achievedPerSecond,
    overloadAcceptedPerSecond: overload.acceptedPerSecond,
    overloadRejectedPerSecond: overload.rejectedPerSecond,
    overloadOtherFailures: overload.otherFailures,
    overloadRssStartMb: overload.rss.startMb,
    overloadRssPeakMb: overload.rss.peakMb,
    overloadRssEndMb: overload.rss.endMb,
    overloadRssGrowthMb: overload.rss.growthMb,
    overloadRssFlat: overload.rss.flat ?? null,
    sectionSeconds,
    detail: { publish, enqueue, consume, consumeResults, http, httpPostgres, overload, e2e, sustained, peers, scaling },
  };
  const mark = (ok: boolean) => (ok ? 'yes' : '**no**');
  const f = (n: number) => n.toFixed(0);
  const signed = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;
  const shedsCleanly = overload.rejectedPerSecond > 0 && overload.rejectedWithoutRetryAfter === 0 && overload.otherFailures === 0;
  const codeList = Object.entries(overload.rejectCodes).map(([code, n]) => `${code} ${n}`);
  const others = Object.entries(overload.statusCounts).filter(([status]) => status !== '202' && status !== '503');
  const codes = [
    codeList.length > 0 ? `; 503 codes: ${codeList.join(', ')}` : '',
    others.length > 0 ? `; other: ${others.map(([st, n]) => `${st} x${n}`).join(', ')}` : '',
    overload.errors > 0 ? `; errors ${overload.errors} (timeouts ${overload.timeouts})` : '',
    overload.rejectedWithoutRetryAfter > 0 ? `; ${overload.rejectedWithoutRetryAfter} 503 without Retry-After` : '',
  ].join('');
  const rows = [
    ['| measure | Warren | baseline | ratio | target | meets |', '|---|---|---|---|---|---|'],
    [
      `| publish, confirmed msg/s | ${f(publish.warren)} | ${f(publish.raw)} (raw amqplib) | ${results.publishRatio.toFixed(2)} | >= 0.9 | ${mark(results.publishRatio >= 0.9)} |`,
      `| producer.enqueue, confirmed jobs/s | ${f(enqueue.warren)} | ${f(enqueue.raw)} (raw amqplib, the same messages) | ${results.enqueueRatio.toFixed(2)} | >= 0.9 | ${mark(results.enqueueRatio >= 0.9)} |`,
      `| producer.enqueue vs a bare publish to the default exchange | ${f(enqueue.warren)} | ${f(publish.raw)} (raw amqplib, bare) | ${results.enqueueVsBarePublishRatio.toFixed(2)} | | |`,
    ],
    [
      `| consume + ack msg/s | ${f(consume.warren)} | ${f(consume.raw)} (raw amqplib) | ${results.consumeRatio.toFixed(2)} | >= 0.9 | ${mark(results.consumeRatio >= 0.9)} |`,
    ],
    [
      `| consume + result + ack msg/s | ${f(consumeResults.warren)} | ${f(consumeResults.raw)} (raw amqplib) | ${results.consumeWithResultsRatio.toFixed(2)} | >= 0.9 | ${mark(results.consumeWithResultsRatio >= 0.9)} |`,
    ],
    [
      `| HTTP accepted req/s (50 conns) | ${f(http.warren.acceptedPerSecond)} | ${f(http.bare.acceptedPerSecond)} (bare express) | ${results.httpRatio.toFixed(2)} | >= 0.5 | ${mark(results.httpRatio >= 0.5)} |`,
    ],
    [
      `| HTTP p50 / p99 ms | ${http.warren.p50Ms} / ${http.warren.p99Ms} | ${http.bare.p50Ms} / ${http.bare.p99Ms} | | p99 < 50 | ${mark(http.warren.p99Ms < 50)} |`,
    ],
    [
      'value' in httpPostgres
        ? `| HTTP accepted req/s, PostgreSQL store, p99 ms | ${f(httpPostgres.value.warren.acceptedPerSecond)}, p99 ${httpPostgres.value.warren.p99Ms} | ${f(httpPostgres.value.bare.acceptedPerSecond)} (bare express) | ${(httpPostgres.value.warren.acceptedPerSecond / httpPostgres.value.bare.acceptedPerSecond).toFixed(2)} | >= 0.5, p99 < 50 | ${mark(httpPostgres.value.warren.acceptedPerSecond >= 0.5 * httpPostgres.value.bare.acceptedPerSecond && httpPostgres.value.warren.p99Ms < 50)} |`
        : `| HTTP, PostgreSQL store | not measured: ${httpPostgres.skipped} | | | | |`,
    ],
    [`| HTTP non-2xx + errors | ${results.httpNon2xx} | ${http.bare.non2xx + http.bare.errors} | | 0 | ${mark(results.httpNon2xx === 0)} |`],
    [
      `| overload: 2x offered, ${overload.connections} conns, ${overload.seconds} s, no worker: answered req/s | ${f(overload.achievedPerSecond)} (202: ${f(overload.acceptedPerSecond)}/s, 503: ${f(overload.rejectedPerSecond)}/s${codes}) | ${f(overload.offeredPerSecond)} offered | ${(overload.achievedPerSecond / overload.offeredPerSecond).toFixed(2)} | 503 + Retry-After only | ${mark(shedsCleanly)} |`,
    ],
    [
      `| overload: API RSS MiB start / peak / last quarter (growth) | ${f(overload.rss.startMb)} / ${f(overload.rss.peakMb)} / ${f(overload.rss.endMb)} (${signed(overload.rss.growthMb)}) | | | flat: growth < ${FLAT_MAX_GROWTH_SHARE * 100}% of start and < ${FLAT_MAX_GROWTH_MB} | ${overload.rss.flat === undefined ? 'n/a: start-up RSS not released in the warm-up' : mark(overload.rss.flat)} |`,
    ],
    [`| end to end processed/s (1 API, 2 workers) | ${f(e2e.perSecond)} (${e2e.accepted} requests) | | | | |`],
    sustainedRow('embedded store', sustained.embedded),
    'skipped' in sustained.postgres
      ? [`| sustained e2e, PostgreSQL | not measured: ${sustained.postgres.skipped} | | | | |`]
      : sustainedRow('PostgreSQL', sustained.postgres),
    [
      `| producer.enqueue to stored result, jobs/s (p99 ms) | ${f(peers.warren.e2ePerSecond)} (${ms(peers.warren.e2eP99Ms)}) | ${f(peers.bullmqDurable.e2ePerSecond)} (${ms(peers.bullmqDurable.e2eP99Ms)}) (BullMQ, Redis appendfsync everysec) | ${(peers.warren.e2ePerSecond / peers.bullmqDurable.e2ePerSecond).toFixed(2)} | >= 1 | ${mark(peers.warren.e2ePerSecond >= peers.bullmqDurable.e2ePerSecond)} |`,
      `| enqueue jobs/s (window 256) | ${f(peers.warren.enqueuePerSecond)} | ${f(peers.bullmqDurable.enqueuePerSecond)} (BullMQ queue.add, durable Redis) | ${(peers.warren.enqueuePerSecond / peers.bullmqDurable.enqueuePerSecond).toFixed(2)} | | |`,
      'skipped' in peers.postgres
        ? `| the same, the API on PostgreSQL | not measured: ${peers.postgres.skipped} | | | | |`
        : `| the same, the API on PostgreSQL (rounds of its own against the same BullMQ), jobs/s (p99 ms) | ${f(peers.postgres.warren.e2ePerSecond)} (${ms(peers.postgres.warren.e2eP99Ms)}) | ${f(peers.postgres.bullmqDurable.e2ePerSecond)} (${ms(peers.postgres.bullmqDurable.e2eP99Ms)}) | ${(peers.postgres.warren.e2ePerSecond / peers.postgres.bullmqDurable.e2ePerSecond).toFixed(2)} | (for the record) | |`,
      'skipped' in peers.bullmqMachine
        ? `| BullMQ on the machine's Redis | not measured: ${peers.bullmqMachine.skipped} | | | | |`
        : `| BullMQ on the machine's Redis (no persistence): enqueue / to stored result jobs/s (p99 ms) | | ${f(peers.bullmqMachine.enqueuePerSecond)} / ${f(peers.bullmqMachine.e2ePerSecond)} (${ms(peers.bullmqMachine.e2eP99Ms)}) | | | |`,
    ],
    ...scaling.map((s) => [
      `| scaling: ${s.replicas} replica(s), 20 ms handler | ${f(s.perSecond)}/s | | ${(s.perSecond / (scaling[0]?.perSecond ?? 1)).toFixed(2)} vs 1 | grows | ${mark(s.replicas === 1 || s.perSecond > (scaling[0]?.perSecond ?? 0) * 1.3)} |`,
    ]),
    [`| peak RSS MiB: API under HTTP load / e2e | ${f(http.apiPeakRssMb)} / ${f(e2e.apiPeakRssMb)} | | | | |`],
    [`| API peak RSS MiB under the HTTP load, embedded store (sampled) | ${f(http.apiLoadPeakRssMb)} | | | <= 300 | ${mark(http.apiLoadPeakRssMb <= 300)} |`],
    [`| peak RSS MiB: workers e2e (2 replicas + supervisor) | ${f(e2e.workerPeakRssMb)} | | | | |`],
  ].flat();
  const httpRounds = (r: HttpComparison) => r.rounds.map((x) => `${x.ratio.toFixed(2)} (p99 ${x.warrenP99Ms} ms)`).join(', ');
  const peerRounds = (r: PeerComparison) => r.rounds.map((x) => x.ratio.toFixed(2)).join(', ');
  console.log(
    `\n${rows.join('\n')}\n\nHTTP rounds, Warren/bare (the median one in the table): embedded ${httpRounds(http)}${'value' in httpPostgres ? `; PostgreSQL ${httpRounds(httpPostgres.value)}` : ''}\nPeers rounds, Warren/BullMQ to stored results (the median one in the table): embedded ${peerRounds(peers)}${'skipped' in peers.postgres ? '' : `; PostgreSQL ${peerRounds(peers.postgres)}`}\n\n${stepTable(sustained.embedded, 'embedded store')}${'skipped' in sustained.postgres ? '' : `\n\n${stepTable(sustained.postgres, 'PostgreSQL')}`}\n\n${results.machine.cpus} cpus (${results.machine.cpuModel}), node ${process.version}, RabbitMQ ${results.machine.rabbitmq}, ${results.seconds} s`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/latest.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
} finally {
  await mgmt.delete(mgmt.path('vhosts', vhost)).catch(() => undefined);
  if (node) await node.stop();
}
// Whatever still holds the event loop here (autocannon's agents, a closing socket) must not keep
// a finished benchmark alive.
const lingering = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
if (lingering.length > 0) console.error(`exiting with open handles: ${lingering.join(', ')}`);
process.exit(process.exitCode ?? 0);
