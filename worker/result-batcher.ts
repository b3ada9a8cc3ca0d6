import { randomUUID } from 'node:crypto';
import type { Envelope } from '../amqp/index.ts';
import { GroupCommit, RESULTS_BATCH_CONTENT_TYPE, RESULTS_BATCH_HEADER } from '../core/index.ts';

/** Results per message at most, unless the worker says otherwise (WORKER_RESULT_BATCH). */
export const DEFAULT_RESULT_BATCH = 100;
/** Bytes of results per message at most: a batch past it leaves as several messages. */
export const RESULT_BATCH_MAX_BYTES = 1024 * 1024;

/**
 * Result messages share broker messages under load. Per route (exchange and routing key), one
 * results message is awaiting its confirm at a time; the results that finish meanwhile leave
 * together in the next one (a group commit, core/group-commit.ts): a JSON array of result bodies
 * (core/message.ts), each with the trace headers it would have carried, content type
 * `application/vnd.warren.results+json`. Every caller's promise settles with the publish that
 * holds its result, so a consumed message is still acked only once the broker confirmed its
 * replacement. A result that is alone (an idle worker) leaves unchanged, as the single result
 * message it always was.
 *
 * Why: a job is two broker messages (its request and its result), each confirmed, delivered and
 * acked through a quorum queue, and under load the broker's work per job is what limits
 * throughput (bench/README.md). Sharing result messages removes most of the second one.
 */
export class ResultBatcher {
  private readonly routes = new Map<string, GroupCommit<Envelope>>();

  constructor(
    private readonly publish: (envelope: Envelope) => Promise<void>,
    /** Results per message at most; 1 sends each as a message of its own. */
    private readonly maxItems: number = DEFAULT_RESULT_BATCH,
    private readonly maxBytes: number = RESULT_BATCH_MAX_BYTES,
  ) {}

  /** Publishes a result message, with the others ready when its turn comes; settles with that publish. */
  add(envelope: Envelope): Promise<void> {
    if (this.maxItems <= 1) return this.publish(envelope);
    const key = `${envelope.exchange}\u0000${envelope.routingKey}`;
    let route = this.routes.get(key);
    if (!route) {
      // Unbounded: a worker has at most its prefetch of results waiting.
      route = new GroupCommit<Envelope>((envelopes) => this.send(envelopes), { maxBatch: this.maxItems, maxPending: Number.POSITIVE_INFINITY });
      this.routes.set(key, route);
    }
    return route.add(envelope);
  }

  private async send(envelopes: Envelope[]): Promise<undefined[]> {
    const messages = splitByBytes(envelopes, this.maxBytes).map((part) => (part.length === 1 ? (part[0] as Envelope) : batchEnvelope(part)));
    await Promise.all(messages.map((m) => this.publish(m)));
    return envelopes.map(() => undefined);
  }
}

/** Consecutive parts of at most `maxBytes` of content (a larger one alone). */
function splitByBytes(envelopes: Envelope[], maxBytes: number): Envelope[][] {
  const parts: Envelope[][] = [];
  let current: Envelope[] = [];
  let bytes = 0;
  for (const e of envelopes) {
    if (current.length > 0 && bytes + e.content.length > maxBytes) {
      parts.push(current);
      current = [];
      bytes = 0;
    }
    current.push(e);
    bytes += e.content.length;
  }
  if (current.length > 0) parts.push(current);
  return parts;
}

/** The batch message: the results' JSON joined into an array, each with its carried headers. */
export function batchEnvelope(envelopes: readonly Envelope[]): Envelope {
  const first = envelopes[0];
  if (!first) throw new Error('a results batch needs at least one result');
  const parts: Buffer[] = [OPEN];
  envelopes.forEach((e, i) => {
    if (i > 0) parts.push(COMMA);
    const headers = e.options.headers;
    if (headers && Object.keys(headers).length > 0) {
      // A result message's JSON is an object: its headers go in as one more field.
      parts.push(e.content.subarray(0, e.content.length - 1), Buffer.from(`,"headers":${JSON.stringify(headers)}}`, 'utf8'));
    } else {
      parts.push(e.content);
    }
  });
  parts.push(CLOSE);
  return {
    exchange: first.exchange,
    routingKey: first.routingKey,
    content: Buffer.concat(parts),
    options: {
      persistent: true,
      mandatory: true,
      contentType: RESULTS_BATCH_CONTENT_TYPE,
      messageId: randomUUID(),
      ...(first.options.timestamp !== undefined ? { timestamp: first.options.timestamp } : {}),
      headers: { [RESULTS_BATCH_HEADER]: envelopes.length },
    },
  };
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');
