import type { ChannelModel } from 'amqplib';
import { exists } from '../amqp/index.ts';
import { WarrenError } from '../core/index.ts';

/**
 * The startup check: services never declare (only `topology apply` does), they check passively
 * that what they need exists and fail fast with the command that fixes it.
 */
export class MissingTopologyError extends WarrenError {
  readonly missing: readonly string[];

  constructor(missing: readonly string[]) {
    super(
      'TOPOLOGY_MISSING',
      `the broker lacks what this worker needs: ${missing.join(', ')}. ` +
        'Declare the topology first: `npm run topology:apply` (with the same AMQP_URL and TOPOLOGY as the worker).',
    );
    this.missing = missing;
  }
}

export interface TopologyNeeds {
  queues: readonly string[];
  exchanges: readonly string[];
}

/** Throws MissingTopologyError naming every missing queue and exchange. */
export async function checkTopology(connection: ChannelModel, needs: TopologyNeeds): Promise<void> {
  const missing: string[] = [];
  for (const q of unique(needs.queues)) {
    if (!(await exists(connection, (ch) => ch.checkQueue(q)))) missing.push(`queue "${q}"`);
  }
  for (const x of unique(needs.exchanges)) {
    if (x === '') continue; // the default exchange always exists
    if (!(await exists(connection, (ch) => ch.checkExchange(x)))) missing.push(`exchange "${x}"`);
  }
  if (missing.length > 0) throw new MissingTopologyError(missing);
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}
