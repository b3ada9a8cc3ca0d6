import { EventEmitter } from 'node:events';
import type { ConfirmChannel } from 'amqplib';

export interface SentMessage {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Record<string, unknown>;
  cb: (err: unknown) => void;
}

/** A confirm channel a unit test drives: it records publishes and confirms, nacks, returns or closes on demand. */
export class FakeConfirmChannel extends EventEmitter {
  readonly sent: SentMessage[] = [];
  throwOnPublish = false;

  publish(exchange: string, routingKey: string, content: Buffer, options: Record<string, unknown>, cb: (err: unknown) => void): boolean {
    if (this.throwOnPublish) throw new Error('Channel closed');
    this.sent.push({ exchange, routingKey, content, options, cb });
    return true;
  }
  ack(i = 0): void {
    this.sent[i]?.cb(null);
  }
  nack(i = 0): void {
    this.sent[i]?.cb(new Error('message nacked'));
  }
  /** basic.return of the i-th message, as amqplib emits it (before the confirm). */
  returnMessage(i = 0): void {
    const m = this.sent[i];
    if (m)
      this.emit('return', { fields: { exchange: m.exchange, routingKey: m.routingKey }, properties: { messageId: m.options.messageId }, content: m.content });
  }
}

/** A channel source over a fake channel, as the ChannelHolder is over a real one. */
export function fakeSource(ch = new FakeConfirmChannel()) {
  const listeners: Array<() => void> = [];
  const source = {
    current: ch as unknown as ConfirmChannel | undefined,
    blocked: false,
    addBlockedListener(l: () => void) {
      listeners.push(l);
    },
    block() {
      source.blocked = true;
      for (const l of listeners) l();
    },
  };
  return { ch, source };
}
