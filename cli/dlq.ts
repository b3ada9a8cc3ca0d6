import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  DeadLetterQueues,
  databaseSchemaVar,
  databaseUrlVar,
  detail,
  exportRecord,
  groupDeadLetters,
  maskMessage,
  type ResultStore,
  recordSummary,
  summary,
} from '../api/index.ts';
import { amqpUrlsVar, logLevelVar, readEnv } from '../core/index.ts';
import { loadCompiledTopology } from '../topology/index.ts';
import { openStoreIfFree } from './dlq-store.ts';
import { cliLogger } from './log.ts';
import { formatAge, formatTable } from './table.ts';

export const USAGE = `Usage:
  warren dlq list   [--queue Q] [--limit N] [--group G] [--json]
  warren dlq show   <requestId> [--json]
  warren dlq stats  [--queue Q] [--json]
  warren dlq replay (--id ID ... | --group G | --all) [--queue Q] [--rate N] [--dry-run] [--json]
  warren dlq purge  (--id ID ... | --group G | --all) [--queue Q] [--export FILE.jsonl] --yes [--json]

list and stats read the store (every dead letter is recorded there), so browsing touches no
queue; when the embedded store is held by a running API they read the queues instead, which
removes, reorders and duplicates nothing. replay republishes each message to its origin queue
(mandatory, confirmed), attempt count reset and history kept, and only then removes it; a dead
letter whose origin queue is gone stays dead and the command exits 1 naming the queue. purge
writes the export (fsynced) before removing anything. Summaries go to stdout, logs to stderr at
warn (LOG_LEVEL=info shows one line per message); --json prints one JSON document on stdout.
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
    DATABASE_URL: databaseUrlVar(),
    DATABASE_SCHEMA: databaseSchemaVar(),
    DATA_DIR: z.string().default('.warren'),
    LOG_LEVEL: logLevelVar(),
  });
  // Logs go to stderr, at warn unless LOG_LEVEL asks otherwise: stdout carries the summary only.
  const logger = cliLogger('warren-dlq', process.env.LOG_LEVEL ? env.LOG_LEVEL : 'warn', 2);
  const dlq = new DeadLetterQueues(env.AMQP_URL[0] as string, loadCompiledTopology(env.TOPOLOGY), logger);
  const out = (json: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  const note = (text: string) => process.stderr.write(`note: ${text}\n`);
  const now = Date.now();

  if (sub === 'list' || sub === 'stats') {
    const store = await openStoreIfFree(env, logger, (why) => note(`${why}; reading the dead-letter queues instead of the store`));
    try {
      return store ? await browseStore(sub, store, values, out, now) : await browseQueues(sub, dlq, values, out, now);
    } finally {
      await store?.close();
    }
  }
  if (sub === 'show') {
    const id = positionals[0];
    if (!id) throw new Error('dlq show: expected a requestId');
    const [dl] = await dlq.browse({ ids: [id] }, 1);
    if (!dl) {
      process.stderr.write(
        `no dead letter for ${id} in ${dlq
          .queues()
          .map((s) => s.deadQueue)
          .join(', ')}\n`,
      );
      return 1;
    }
    const d = detail(dl);
    out(d, showText(d));
    return 0;
  }

  const selector = { ids: values.id, group: values.group, all: values.all, queue: values.queue };
  if (!(values.id?.length || values.group || values.all)) throw new Error(`dlq ${sub}: expected --id, --group or --all`);

  if (sub === 'replay') {
    const rate = values.rate ? Number(values.rate) : undefined;
    if (rate !== undefined && !(rate > 0)) throw new Error('--rate: expected a positive number of messages per second');
    const store = values['dry-run']
      ? undefined
      : await openStoreIfFree(env, logger, (why) =>
          note(
            `${why}. Replayed requests keep status "dead" until they are done; replay from the console (/admin) or POST /api/v1/admin/dead-letters/replay to see them "queued" meanwhile.`,
          ),
        );
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
      if (progress && result.matched > 0) process.stderr.write('\n');
      const queues = [...new Set(result.failed.map((f) => f.queue))];
      const failedText = result.failed.length
        ? `\n${result.failed.length} dead letter(s) stay dead: origin queue ${queues.map((q) => `"${q}"`).join(', ')} does not exist`
        : '';
      out(
        { ...result, dryRun: values['dry-run'], storeUpdated: Boolean(store) },
        values['dry-run']
          ? `dry run: ${result.matched} dead letter(s) would be replayed`
          : `replayed ${result.replayed} of ${result.matched} matching dead letter(s)${failedText}`,
      );
      if (result.failed.length && values.json) process.stderr.write(`${failedText.trim()}\n`);
      return result.failed.length ? 1 : 0;
    } finally {
      await store?.close();
    }
  }

  // purge
  if (!values.yes) {
    process.stderr.write('dlq purge removes dead letters for good: add --yes to confirm (and --export FILE.jsonl to keep a copy)\n');
    return 1;
  }
  const file = values.export;
  const store = await openStoreIfFree(env, logger, (why) => note(`${why}; the store keeps listing the purged requests as dead`));
  try {
    const result = await dlq.purge(selector, {
      exportTo: file
        ? async (batch) =>
            appendFsynced(
              file,
              batch.map((dl) => JSON.stringify(exportRecord(dl))),
            )
        : undefined,
      onPurged: async (letters) => {
        await store?.markPurged(letters.flatMap((dl) => (dl.requestId ? [dl.requestId] : [])));
      },
    });
    out({ ...result, exportedTo: file ?? null }, `purged ${result.purged} dead letter(s)${file ? `, exported to ${file}` : ''}`);
    return 0;
  } finally {
    await store?.close();
  }
}

type Values = { queue?: string | undefined; group?: string | undefined; limit?: string | undefined };
type Out = (json: unknown, text: string) => void;
type Cell = string | number | undefined;

function limitOf(values: Values): number {
  const limit = values.limit ? Number(values.limit) : 1000;
  if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit: expected a positive integer');
  return limit;
}

async function browseStore(sub: 'list' | 'stats', store: ResultStore, values: Values, out: Out, now: number): Promise<number> {
  if (sub === 'list') {
    const letters = await store.listDead({ group: values.group, queue: values.queue, limit: limitOf(values) });
    const rows = letters.map((d) => [
      d.requestId,
      d.originQueue,
      d.reason,
      d.message,
      d.attempts,
      d.firstFailure,
      d.deadAt,
      formatAge(ageOf(d.deadAt, now)),
      d.group,
    ]);
    out({ count: letters.length, source: 'store', deadLetters: letters.map(recordSummary) }, listText(rows, letters.length));
    return 0;
  }
  const groups = (await store.deadGroups({ queue: values.queue })).map((g) => ({ ...g, pattern: maskMessage(g.message ?? '') }));
  const total = groups.reduce((n, g) => n + g.count, 0);
  out(
    { total, source: 'store', groups },
    statsText(
      groups.map((g) => [g.group, g.count, g.reason, g.pattern, g.firstFailure, g.lastFailure, g.example]),
      total,
      groups.length,
    ),
  );
  return 0;
}

async function browseQueues(sub: 'list' | 'stats', dlq: DeadLetterQueues, values: Values, out: Out, now: number): Promise<number> {
  if (sub === 'list') {
    const letters = await dlq.browse({ all: !values.group, group: values.group, queue: values.queue }, limitOf(values));
    const rows = letters.map((d) => [
      d.requestId ?? '(none)',
      d.originQueue,
      d.reason,
      d.errorMessage,
      d.attempts,
      d.firstFailure,
      d.deadAt ?? d.lastFailure,
      formatAge(ageOf(d.deadAt ?? d.lastFailure, now)),
      d.fingerprint.id,
    ]);
    out({ count: letters.length, source: 'queue', deadLetters: letters.map(summary) }, listText(rows, letters.length));
    return 0;
  }
  const letters = await dlq.browse({ all: true, queue: values.queue });
  const groups = groupDeadLetters(letters);
  out(
    { total: letters.length, source: 'queue', groups },
    statsText(
      groups.map((g) => [g.group, g.count, g.reason, g.pattern, g.oldest, g.newest, g.example]),
      letters.length,
      groups.length,
    ),
  );
  return 0;
}

function listText(rows: Cell[][], count: number): string {
  if (count === 0) return 'no dead letters';
  const head = ['requestId', 'queue', 'reason', 'error', 'attempts', 'first failure', 'dead at', 'age', 'group'];
  return `${formatTable(head, rows, 48)}\n\n${count} dead letter(s)`;
}

function statsText(rows: Cell[][], total: number, groups: number): string {
  if (groups === 0) return 'no dead letters';
  return `${formatTable(['group', 'count', 'reason', 'error (masked)', 'first failure', 'last failure', 'example'], rows, 56)}\n\n${total} dead letter(s) in ${groups} group(s)`;
}

function showText(d: ReturnType<typeof detail>): string {
  return [
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
  ].join('\n');
}

/** Written and fsynced before anything is removed from the queue. */
function appendFsynced(file: string, lines: string[]): void {
  const fd = openSync(file, 'a');
  try {
    for (const line of lines) writeSync(fd, `${line}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
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
