import type { ConsumeMessage } from 'amqplib';
import {
  decodeRequest,
  decodeResult,
  decodeResults,
  errorCode,
  isPermanent,
  type Logger,
  RESULTS_BATCH_CONTENT_TYPE,
  type ResultMessage,
  requestIdOf,
} from '../../core/index.ts';
import { deadLetterFacts } from '../dead-letters/dead-letter.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { DeadInfo, ResultInput, ResultStore } from '../store/result-store.ts';
import { decodeDeadEvent } from './dead-event.ts';

/**
 * The two consumers' handlers: turn a message into a store upsert. They resolve once the store
 * committed (the consumer then acks) and throw only when retrying can help.
 */
export function createResultHandler(store: ResultStore, logger: Logger, metrics?: ApiMetrics): (msg: ConsumeMessage) => Promise<void> {
  const log = logger.child({ component: 'results' });
  /** After the store answered for one result: its metric and log line, or its dead mark when the store refused it. */
  const settled = async (item: ResultMessage, outcome: boolean | Error, messageId: unknown): Promise<void> => {
    const requestId = item.requestId;
    if (outcome instanceof Error) {
      if (!isPermanent(outcome)) throw outcome;
      await store.recordDead(requestId, { reason: 'malformed', code: 'RESULT_NOT_STORABLE', message: 'the store refused the result value' });
      // Only the code: a data error's detail can quote the result, and bodies stay out of logs.
      log.warn({ requestId, code: errorCode(outcome) }, 'result not storable; request marked dead');
      return;
    }
    if (outcome) metrics?.outcomeStored('done', item.acceptedAt);
    if (log.isLevelEnabled('info')) {
      log.info({ requestId, messageId, attempt: attemptsOf(item), duplicate: !outcome }, outcome ? 'result stored' : 'duplicate result ignored');
    }
  };
  return async (msg) => {
    const messageId = msg.properties.messageId;
    const results: ResultMessage[] = [];
    if (msg.properties.contentType === RESULTS_BATCH_CONTENT_TYPE) {
      const items = decodeResults(msg.content);
      if (!items) {
        log.warn({ deliveryTag: msg.fields.deliveryTag, messageId }, 'results batch is not a JSON array; nothing to store');
        return;
      }
      for (const item of items) {
        if (item?.requestId) results.push(item);
        else log.warn({ deliveryTag: msg.fields.deliveryTag }, 'result without a requestId in a batch; nothing to store');
      }
    } else {
      const decoded = decodeResult(msg.content);
      const requestId = decoded?.requestId ?? requestIdOf(msg);
      if (!requestId) {
        log.warn({ deliveryTag: msg.fields.deliveryTag }, 'result without a requestId; nothing to store');
        return;
      }
      if (!decoded) {
        // Marking it dead keeps the promise that every accepted request ends done or dead.
        await store.recordDead(requestId, { reason: 'malformed', code: 'MALFORMED_RESULT', message: 'the result message is not a valid result' });
        log.warn({ requestId }, 'malformed result; request marked dead');
        return;
      }
      results.push(decoded);
    }
    // All of them in one store call (the store commits them together) before the one ack; a
    // failure requeues the message, and the results already stored come back as duplicates, ignored.
    const outcomes = await store.recordResults(results.map(inputOf));
    let unavailable: Error | undefined;
    for (const [i, item] of results.entries()) {
      try {
        await settled(item, outcomes[i] ?? new Error('the store gave no outcome for this result'), messageId);
      } catch (err) {
        unavailable ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    if (unavailable) throw unavailable;
  };
}

/** A result's attempts when it gives a usable count. */
function attemptsOf(item: ResultMessage): number | undefined {
  return Number.isFinite(item.attempts) && item.attempts > 0 ? Math.trunc(item.attempts) : undefined;
}

function inputOf(item: ResultMessage): ResultInput {
  return { requestId: item.requestId, result: item.result, attempts: attemptsOf(item) };
}

/** `deliveryLimits`: each quorum queue's x-delivery-limit, from the topology. */
export function createDeadEventHandler(
  store: ResultStore,
  logger: Logger,
  deliveryLimits: Readonly<Record<string, number>> = {},
  metrics?: ApiMetrics,
): (msg: ConsumeMessage) => Promise<void> {
  const log = logger.child({ component: 'dead-events' });
  return async (msg) => {
    const { requestId, info } = decodeDeadEvent(msg, { deliveryLimits });
    if (!requestId) {
      log.warn({ reason: info.reason, deliveryTag: msg.fields.deliveryTag }, 'dead event without a requestId; nothing to store');
      return;
    }
    const facts = deadLetterFacts(msg);
    let stored: boolean;
    try {
      stored = await store.recordDead(requestId, { ...info, ...facts });
    } catch (err) {
      if (!isPermanent(err)) throw err;
      // The store refused the event's text (a header holding \u0000, which jsonb refuses): the
      // request must still end dead, so it is recorded with fixed words instead of being acked
      // and left queued for ever.
      stored = await store.recordDead(requestId, { ...storableDeadInfo(info), group: facts.group });
      log.warn({ requestId, code: errorCode(err) }, 'dead event details not storable; request marked dead without them');
    }
    if (stored && metrics) metrics.outcomeStored('dead', acceptedAtOf(msg.content));
    log.info(
      { requestId, reason: info.reason, code: info.code, attempts: info.attempts, stored },
      stored ? 'request dead' : 'dead event for a done request ignored',
    );
  };
}

/** The reason when it is one of the plain words Warren and the broker use, and no free text. */
function storableDeadInfo(info: DeadInfo): DeadInfo {
  return {
    reason: /^[a-z][a-z0-9-]{0,63}$/.test(info.reason) ? info.reason : 'unknown',
    code: 'DEAD_EVENT_NOT_STORABLE',
    message: "the store refused the dead event's error text",
    attempts: info.attempts,
  };
}

/** A dead letter's body is the request as the API published it: its acceptedAt, if any. */
function acceptedAtOf(body: Buffer): number | undefined {
  const decoded = decodeRequest(body);
  return decoded.ok ? decoded.value.acceptedAt : undefined;
}
