import type { TopologyProblem } from '../core/index.ts';
import type { Topology } from './load.ts';

/**
 * Settings that lose messages. Warren's promise is that every accepted request ends done or dead;
 * a queue that drops messages silently breaks it. Errors, for settings that discard a message
 * with no copy anywhere: a full queue dropping its oldest (drop-head, which is also RabbitMQ's
 * default when a length limit is set without `overflow`), an expired TTL, and a quorum queue's
 * delivery limit, each without a dead-letter queue to receive what is dropped. A warning, for a
 * setting that loops rather than loses: a classic queue has no delivery limit, so a message that
 * crashes its worker is redelivered for ever.
 */
export function lossProblems(topo: Topology): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  for (const [qn, q] of Object.entries(topo.queues)) {
    if (q.deadLetter) continue;
    const at = (key: string) => `queues.${qn}.${key}`;
    const limited = q.maxLength !== undefined || q.maxLengthBytes !== undefined;
    if (q.overflow === 'drop-head' || (limited && q.overflow === undefined)) {
      problems.push({
        file: q.file,
        path: at(q.overflow === undefined ? (q.maxLength !== undefined ? 'maxLength' : 'maxLengthBytes') : 'overflow'),
        message:
          `${q.overflow === undefined ? 'a length limit without overflow means drop-head (the RabbitMQ default)' : 'drop-head'}, which drops the oldest messages of a full queue with no copy kept; ` +
          'expected overflow: reject-publish (publishers are told the queue is full), or deadLetter: true (dropped messages go to the dead-letter queue)',
      });
    }
    if (q.messageTtl !== undefined) {
      problems.push({
        file: q.file,
        path: at('messageTtl'),
        message: 'messageTtl without a dead-letter queue drops expired messages with no copy kept; expected deadLetter: true with messageTtl',
      });
    }
    if (q.type === 'quorum' && q.deliveryLimit !== undefined) {
      problems.push({
        file: q.file,
        path: at('deliveryLimit'),
        message: 'a delivery limit without a dead-letter target drops a message past the limit; expected deadLetter: true with deliveryLimit',
      });
    }
  }
  return problems;
}

/** Loud but not fatal: settings that can loop for ever without losing anything. */
export function lossWarnings(topo: Topology): string[] {
  const warnings: string[] = [];
  for (const [qn, q] of Object.entries(topo.queues)) {
    if (q.type === 'classic') {
      warnings.push(
        `${q.file}: queues.${qn}.type: classic queues have no delivery limit: a message that crashes its worker is redelivered for ever (no broker-side cap); expected type: quorum with deadLetter: true`,
      );
    }
  }
  return warnings;
}
