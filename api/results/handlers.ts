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
import type { DeadInfo, ResultStore } from '../store/result-store.ts';
import { decodeDeadEvent } from './dead-event.ts';

/**
 * The two consumers' handlers: turn a message into a store upsert. They resolve once the store
 * committed (the consumer then acks) and throw only when retrying can help.
 */
export function createResultHandler(store: ResultStore, logger: Logger, metrics?: ApiMetrics): (msg: ConsumeMessage) => Promise<void> {
  const log = logger.child({ component: 'results' });
  const storeOne = async (requestId: string, decoded: ResultMessage | undefined, messageId: unknown): Promise<void> => {
    if (!decoded) {
      // Marking it dead keeps the promise that every accepted request ends done or dead.
      await store.recordDead(requestId, { reason: 'malformed', code: 'MALFORMED_RESULT', message: 'the result message is not a valid result' });
      log.warn({ requestId }, 'malformed result; request marked dead');
      return;
    }
    const attempts = Number.isFinite(decoded.attempts) && decoded.attempts > 0 ? Math.trunc(decoded.attempts) : undefined;
    try {
      const stored = await store.recordResult({ requestId, result: decoded.result, attempts });
      if (stored) metrics?.outcomeStored('done', decoded.acceptedAt);
      log.info({ requestId, messageId, attempt: attempts, duplicate: !stored }, stored ? 'result stored' : 'duplicate result ignored');
    } catch (err) {
      if (!isPermanent(err)) throw err;
      await store.recordDead(requestId, { reason: 'malformed', code: 'RESULT_NOT_STORABLE', message: 'the store refused the result value' });
      // Only the code: a data error's detail can quote the result, and bodies stay out of logs.
      log.warn({ requestId, code: errorCode(err) }, 'result not storable; request marked dead');
    }
  };
  return async (msg) => {
    if (msg.properties.contentType === RESULTS_BATCH_CONTENT_TYPE) {
      const items = decodeResults(msg.content);
      if (!items) {
        log.warn({ deliveryTag: msg.fields.deliveryTag, messageId: msg.properties.messageId }, 'results batch is not a JSON array; nothing to store');
        return;
      }
      // All of them stored (the store commits them together) before the one ack; a failure
      // requeues the batch, and the results already stored come back as duplicates, ignored.
      const stored = await Promise.allSettled(
        items.map((item) => {
          if (item?.requestId) return storeOne(item.requestId, item, msg.properties.messageId);
          log.warn({ deliveryTag: msg.fields.deliveryTag }, 'result without a requestId in a batch; nothing to store');
          return Promise.resolve();
        }),
      );
      const failed = stored.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      return;
    }
    const decoded = decodeResult(msg.content);
    const requestId = decoded?.requestId ?? requestIdOf(msg);
    if (!requestId) {
      log.warn({ deliveryTag: msg.fields.deliveryTag }, 'result without a requestId; nothing to store');
      return;
    }
    await storeOne(requestId, decoded, msg.properties.messageId);
  };
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
