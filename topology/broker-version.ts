import type { CompiledTopology, QueueDecl } from './compile.ts';

/**
 * What differs between the RabbitMQ versions Warren runs on (3.10 to 4.3), as pure decisions over
 * the version the broker announced in its connection.start server properties. Only 3.10 runs on
 * the machine Warren is developed on: the 4.x branches are covered by unit tests and reasoning
 * from RabbitMQ's release notes, not by a run (README, "RabbitMQ versions").
 */
export interface BrokerVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

/** "3.10.8", "4.1.0-rc.1", "4.2.0+1.g1234" -> numbers; undefined when the text is not a version. */
export function parseBrokerVersion(text: unknown): BrokerVersion | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), text: text.trim() };
}

export function atLeast(v: BrokerVersion, major: number, minor = 0): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/**
 * RabbitMQ 4.0 gives a quorum queue that sets no delivery limit a default of 20 and drops a
 * message past it when there is no dead-letter target (rabbitmq-server#11937). Warren's side
 * queues (.dead, .dead.events, retry tiers) and main queues without a dead letter are read by
 * consumers that requeue on a store or broker outage: on 4.x each gets `x-delivery-limit: -1`
 * (unlimited, the 3.x behaviour). Never on 3.x: 3.10 accepts -1 but reads it as a limit already
 * passed, and drops the message at its first requeue (measured on 3.10.8), hence the branch, and
 * an unknown version is treated as 3.x.
 */
export const UNLIMITED_DELIVERIES = -1;
export const DEFAULT_DELIVERY_LIMIT_4X = 20;

export interface BrokerAdaptation {
  compiled: CompiledTopology;
  /** What Warren does differently on this broker, and what the operator should know. */
  notes: string[];
}

/** Pure: the declarations to make on this broker version, and notes naming what differs. */
export function adaptToBroker(compiled: CompiledTopology, version: BrokerVersion | undefined): BrokerAdaptation {
  if (!version || !atLeast(version, 4)) return { compiled, notes: [] };
  const notes: string[] = [];
  const unlimited: string[] = [];
  const queues = compiled.queues.map((q): QueueDecl => {
    if (q.arguments['x-queue-type'] !== 'quorum' || q.arguments['x-delivery-limit'] !== undefined) return q;
    unlimited.push(q.name);
    return { ...q, arguments: { ...q.arguments, 'x-delivery-limit': UNLIMITED_DELIVERIES } };
  });
  if (unlimited.length > 0) {
    notes.push(
      `RabbitMQ ${version.text}: quorum queues without a delivery limit get ${DEFAULT_DELIVERY_LIMIT_4X} from the broker and drop messages past it when they have no dead-letter target; ` +
        `Warren declares x-delivery-limit ${UNLIMITED_DELIVERIES} (unlimited) on ${unlimited.join(', ')}. ` +
        'On a queue that already exists without it, set it without redeclaring: rabbitmqctl set_policy <name> "<queue regex>" \'{"delivery-limit":-1}\' --apply-to quorum_queues.',
    );
  }
  const limited = queues.filter((q) => typeof q.arguments['x-delivery-limit'] === 'number' && (q.arguments['x-delivery-limit'] as number) >= 0);
  if (atLeast(version, 4, 3) && limited.length > 0) {
    notes.push(
      `RabbitMQ ${version.text}: basic.reject and consumer crashes count toward x-delivery-limit, basic.nack with requeue does not; ` +
        `Warren's worker requeues a failed delivery with reject (counted) and a shutdown's with nack (not counted), so the limits of ${limited.map((q) => q.name).join(', ')} count failures and crashes, not shutdowns.`,
    );
  }
  return { compiled: { ...compiled, queues }, notes };
}

/** RabbitMQ 4.1 raised the smallest frame_max it accepts to 8192 bytes. */
export const MIN_FRAME_MAX_41 = 8192;

/**
 * A hint for a refused connection: an AMQP URL that asks for `frameMax` below 8192 is refused by
 * RabbitMQ 4.1+ during the handshake, before any version is known. amqplib's default (128 KiB) is fine.
 */
export function frameMaxHint(amqpUrl: string): string | undefined {
  let frameMax: string | null;
  try {
    frameMax = new URL(amqpUrl).searchParams.get('frameMax');
  } catch {
    return undefined;
  }
  if (frameMax === null) return undefined;
  const n = Number(frameMax);
  if (!Number.isFinite(n) || n === 0 || n >= MIN_FRAME_MAX_41) return undefined;
  return `the AMQP URL asks for frameMax=${n}; RabbitMQ 4.1 and later refuse a frame_max below ${MIN_FRAME_MAX_41} (remove the parameter: the default is 131072)`;
}
