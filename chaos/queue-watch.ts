import { HEADERS, type ManagementClient } from '../core/index.ts';

interface MgmtQueue {
  name: string;
  messages?: number;
  messages_unacknowledged?: number;
  message_stats?: { redeliver?: number };
}

export interface QueueStats {
  /** Highest `messages` (ready + unacked) seen. */
  peak: number;
  /** Redeliveries seen, summed across counter resets (a restarted node starts its stats from zero). */
  redelivered: number;
  last: number;
}

/**
 * Samples the vhost's queues through the management API while the scenario runs: peak depth and
 * redeliveries (the duplicates at-least-once delivery allows). Sampling is best effort: a sample
 * missed while the broker is down is simply skipped.
 */
export class QueueWatch {
  readonly queues = new Map<string, QueueStats>();
  private readonly lastRedeliver = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();
  samples = 0;
  misses = 0;

  constructor(
    private readonly management: () => Promise<ManagementClient>,
    private readonly vhost = '/',
  ) {}

  start(everyMs = 1000): void {
    this.timer = setInterval(() => {
      this.sampling = this.sample().then(
        () => {},
        () => {
          this.misses += 1;
        },
      );
    }, everyMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sampling;
  }

  async sample(): Promise<MgmtQueue[]> {
    const m = await this.management();
    const list = (await m.get<MgmtQueue[]>(`${m.path('queues', this.vhost)}?columns=name,messages,messages_unacknowledged,message_stats.redeliver`)) ?? [];
    this.samples += 1;
    for (const q of list) {
      const s = this.queues.get(q.name) ?? { peak: 0, redelivered: 0, last: 0 };
      const depth = q.messages ?? 0;
      s.peak = Math.max(s.peak, depth);
      s.last = depth;
      const red = q.message_stats?.redeliver ?? 0;
      const prev = this.lastRedeliver.get(q.name) ?? 0;
      // A counter that went down was reset (node restart): count what it had from zero again.
      s.redelivered += red >= prev ? red - prev : red;
      this.lastRedeliver.set(q.name, red);
      this.queues.set(q.name, s);
    }
    return list;
  }

  /** Redeliveries over all queues. */
  get redelivered(): number {
    return [...this.queues.values()].reduce((a, s) => a + s.redelivered, 0);
  }

  peakOf(queue: string): number {
    return this.queues.get(queue)?.peak ?? 0;
  }

  /**
   * True when no queue that feeds a consumer holds a message (ready or unacknowledged). The
   * `.dead` inspection queues are kept on purpose and do not count.
   */
  async brokerIdle(): Promise<boolean> {
    const list = await this.sample();
    // The chaos tap holds a copy of every result on purpose; nothing consumes it.
    return list
      .filter((q) => !q.name.endsWith('.dead') && !q.name.startsWith('chaos.tap.'))
      .every((q) => (q.messages ?? 0) === 0 && (q.messages_unacknowledged ?? 0) === 0);
  }

  /** requestId -> reason of the messages in a dead-letter queue, peeked (requeued) through the management API. */
  async deadLetters(queue: string, max = 2000): Promise<Map<string, string>> {
    const m = await this.management();
    const msgs = await m.post<{ properties?: { message_id?: string; headers?: Record<string, unknown> } }[]>(`${m.path('queues', this.vhost, queue)}/get`, {
      count: max,
      ackmode: 'ack_requeue_true',
      encoding: 'auto',
      truncate: 256,
    });
    const out = new Map<string, string>();
    for (const msg of msgs) {
      const id = msg.properties?.message_id;
      const reason = msg.properties?.headers?.[HEADERS.reason];
      if (id) out.set(id, typeof reason === 'string' ? reason : 'unknown');
    }
    return out;
  }
}
