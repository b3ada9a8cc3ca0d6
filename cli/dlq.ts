import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DeadLetterQueues, detail, exportRecord, groupDeadLetters, openResultStore, type ResultStore, summary } from '../api/index.ts';
import { amqpUrlsVar, ConfigError, createLogger, logLevelVar, readEnv } from '../core/index.ts';
import { loadCompiledTopology } from '../topology/index.ts';
import { formatAge, formatTable } from './table.ts';

const USAGE = `Usage:
  warren dlq list   [--queue Q] [--limit N] [--group G] [--json]
  warren dlq show   <requestId> [--json]
  warren dlq stats  [--queue Q] [--json]
  warren dlq replay (--id ID ... | --group G | --all) [--queue Q] [--rate N] [--dry-run] [--json]
  warren dlq purge  (--id ID ... | --group G | --all) [--queue Q] [--export FILE.jsonl] --yes [--json]

Browsing (list, show, stats) removes, reorders and duplicates nothing. replay republishes each
message to its origin queue with a confirm, attempt count reset and history kept, and only then
removes it; the store's status goes dead -> queued (and done once processed) when DATABASE_URL is
set or the embedded store (DATA_DIR) is not in use by a running API.
`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !['list', 'show', 'stats', 'replay', 'purge'].includes(sub)) {
    process.stderr.write(USAGE);
    return sub === '--help' ? 0 : 1;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      queue: { type: 'string' },
      limit: { type: 'string' },
      group: { type: 'string' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean', default: false },
      rate: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      export: { type: 'string' },
      yes: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const env = readEnv({
    AMQP_URL: amqpUrlsVar(),
    TOPOLOGY: z.string().optional(),
    DATABASE_URL: z.string().optional(),
    DATABASE_SCHEMA: z.string().optional(),
    DATA_DIR: z.string().default('.warren'),
    LOG_LEVEL: logLevelVar(),
  });
  // Audit lines go to stderr so --json output on stdout stays one document.
  const logger = createLogger({
    name: 'warren-dlq',
    level: env.LOG_LEVEL === 'info' && sub !== 'replay' && sub !== 'purge' ? 'warn' : env.LOG_LEVEL,
    destination: 2,
  });
  const dlq = new DeadLetterQueues(env.AMQP_URL[0] as string, loadCompiledTopology(env.TOPOLOGY), logger);
  const out = (json: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  const now = Date.now();

  if (sub === 'list') {
    const limit = values.limit ? Number(values.limit) : 1000;
    if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit: expected a positive integer');
    const letters = await dlq.list({ all: !values.group, group: values.group, queue: values.queue }, limit);
    out(
      { count: letters.length, deadLetters: letters.map(summary) },
      letters.length === 0
        ? 'no dead letters'
        : `${formatTable(
            ['requestId', 'queue', 'reason', 'error', 'attempts', 'first failure', 'last failure', 'age', 'group'],
            letters.map((d) => [
              d.requestId ?? '(none)',
              d.originQueue,
              d.reason,
              d.errorMessage,
              d.attempts,
              d.firstFailure,
              d.lastFailure,
              formatAge(ageOf(d.deadAt ?? d.lastFailure, now)),
              d.fingerprint.id,
            ]),
            48,
          )}\n\n${letters.length} dead letter(s)`,
    );
    return 0;
  }
  if (sub === 'show') {
    const id = positionals[0];
    if (!id) throw new Error('dlq show: expected a requestId');
    const [dl] = await dlq.list({ ids: [id] }, 1);
    if (!dl) {
      process.stderr.write(`no dead letter for ${id}\n`);
      return 1;
    }
    const d = detail(dl);
    out(
      d,
      [
        `requestId     ${d.requestId}`,
        `origin queue  ${d.originQueue}`,
        `reason        ${d.reason} (${d.errorCode ?? 'no code'})`,
        `error         ${d.errorMessage ?? ''}`,
        `attempts      ${d.attempts}   first failure ${d.firstFailure ?? '-'}   last failure ${d.lastFailure ?? '-'}   replays ${d.replays}`,
        `group         ${d.group}`,
        '',
        'headers:',
        ...Object.entries(d.headers).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v.split('\n')[0] : JSON.stringify(v)}`),
        '',
        'attempt history:',
        ...(d.history.length ? d.history.map((h, i) => `  ${i + 1}. ${JSON.stringify(h)}`) : ['  (none recorded)']),
        '',
        'stack:',
        d.errorStack ? d.errorStack.replace(/^/gm, '  ') : '  (none)',
        '',
        'body:',
        JSON.stringify(d.body, null, 2).replace(/^/gm, '  '),
      ].join('\n'),
    );
    return 0;
  }
  if (sub === 'stats') {
    const letters = await dlq.list({ all: true, queue: values.queue });
    const groups = groupDeadLetters(letters);
    out(
      { total: letters.length, groups },
      groups.length === 0
        ? 'no dead letters'
        : `${formatTable(
            ['group', 'count', 'reason', 'error (masked)', 'oldest', 'newest', 'example'],
            groups.map((g) => [g.group, g.count, g.reason, g.pattern, g.oldest, g.newest, g.example]),
            56,
          )}\n\n${letters.length} dead letter(s) in ${groups.length} group(s)`,
    );
    return 0;
  }

  const selector = { ids: values.id, group: values.group, all: values.all, queue: values.queue };
  if (!(values.id?.length || values.group || values.all)) throw new Error(`dlq ${sub}: expected --id, --group or --all`);

  if (sub === 'replay') {
    const rate = values.rate ? Number(values.rate) : undefined;
    if (rate !== undefined && !(rate > 0)) throw new Error('--rate: expected a positive number of messages per second');
    const store = values['dry-run'] ? undefined : await openStoreForReplay(env, logger);
    const progress = process.stderr.isTTY && !values.json;
    try {
      const result = await dlq.replay(selector, {
        dryRun: values['dry-run'],
        ratePerSecond: rate,
        onReplayed: async (dl) => {
          if (store && dl.requestId) await store.markQueued(dl.requestId);
        },
        onProgress: progress ? (done, total) => process.stderr.write(`\r${bar(done, total)} ${done}/${total}`) : undefined,
      });
      if (progress && result.replayed > 0) process.stderr.write('\n');
      out(
        { ...result, dryRun: values['dry-run'], storeUpdated: Boolean(store) },
        values['dry-run']
          ? `dry run: ${result.matched} dead letter(s) would be replayed`
          : `replayed ${result.replayed} of ${result.matched} matching dead letter(s)`,
      );
    } finally {
      await store?.close();
    }
    return 0;
  }

  // purge
  if (!values.yes) {
    process.stderr.write('dlq purge removes dead letters for good: add --yes to confirm (and --export FILE.jsonl to keep a copy)\n');
    return 1;
  }
  const file = values.export;
  const result = await dlq.purge(selector, {
    exportTo: file
      ? async (batch) => {
          // Written and fsynced before anything is removed from the queue.
          const fd = openSync(file, 'a');
          try {
            for (const dl of batch) writeSync(fd, `${JSON.stringify(exportRecord(dl))}\n`);
            fsyncSync(fd);
          } finally {
            closeSync(fd);
          }
        }
      : undefined,
  });
  out({ ...result, exportedTo: file ?? null }, `purged ${result.purged} dead letter(s)${file ? `, exported to ${file}` : ''}`);
  return 0;
}

function ageOf(iso: string | undefined, now: number): number | undefined {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? undefined : now - t;
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/**
 * The store, to move replayed requests dead -> queued. PostgreSQL is shared safely; the embedded
 * store belongs to one process at a time (a lock file), so while `warren api` holds it the replay
 * goes on without it and says so.
 */
async function openStoreForReplay(
  env: { DATABASE_URL?: string | undefined; DATABASE_SCHEMA?: string | undefined; DATA_DIR: string },
  logger: ReturnType<typeof createLogger>,
): Promise<ResultStore | undefined> {
  try {
    return await openResultStore({ databaseUrl: env.DATABASE_URL, databaseSchema: env.DATABASE_SCHEMA, dataDir: env.DATA_DIR, logger });
  } catch (err) {
    if (!(err instanceof ConfigError) || env.DATABASE_URL) throw err;
    process.stderr.write(
      `note: ${err.message}. Replayed requests keep status "dead" until they are done; replay through POST /api/v1/admin/dead-letters/replay (ADMIN_TOKEN) to see them "queued" meanwhile.\n`,
    );
    return undefined;
  }
}
