import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConsumeMessage } from 'amqplib';

/** What a scripted channel records: every frame the code under test sent, in order. */
export type Frame =
  | { op: 'ack'; tag: number; multiple: boolean }
  | { op: 'nack'; tag: number; multiple: boolean; requeue: boolean }
  | { op: 'reject'; tag: number; requeue: boolean }
  | { op: 'prefetch'; count: number }
  | { op: 'consume'; queue: string }
  | { op: 'cancel'; tag: string }
  | { op: 'checkQueue'; queue: string }
  | { op: 'close' };

/** A scripted amqplib channel: records frames, delivers messages on demand, closes on demand. */
export class FakeChannel extends EventEmitter {
  readonly frames: Frame[] = [];
  closed = false;
  private onMessage: ((msg: ConsumeMessage | null) => void) | undefined;
  private nextTag = 1;

  async prefetch(count: number): Promise<void> {
    this.frames.push({ op: 'prefetch', count });
  }
  async consume(queue: string, cb: (msg: ConsumeMessage | null) => void): Promise<{ consumerTag: string }> {
    this.frames.push({ op: 'consume', queue });
    this.onMessage = cb;
    return { consumerTag: 'ctag-1' };
  }
  async cancel(tag: string): Promise<void> {
    this.frames.push({ op: 'cancel', tag });
  }
  async checkQueue(queue: string): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    this.frames.push({ op: 'checkQueue', queue });
    return { queue, messageCount: 0, consumerCount: 1 };
  }
  ack(msg: ConsumeMessage, multiple = false): void {
    this.check();
    this.frames.push({ op: 'ack', tag: msg.fields.deliveryTag, multiple });
  }
  nack(msg: ConsumeMessage, multiple = false, requeue = true): void {
    this.check();
    this.frames.push({ op: 'nack', tag: msg.fields.deliveryTag, multiple, requeue });
  }
  reject(msg: ConsumeMessage, requeue = true): void {
    this.check();
    this.frames.push({ op: 'reject', tag: msg.fields.deliveryTag, requeue });
  }
  async close(): Promise<void> {
    this.frames.push({ op: 'close' });
    this.closeByBroker();
  }
  /** The broker delivers a message (delivery tags count up per channel, as on the wire). */
  deliver(body = '{}'): ConsumeMessage {
    const msg = {
      content: Buffer.from(body),
      fields: { deliveryTag: this.nextTag++, redelivered: false, exchange: '', routingKey: 'q', consumerTag: 'ctag-1' },
      properties: { headers: {} },
    } as unknown as ConsumeMessage;
    this.onMessage?.(msg);
    return msg;
  }
  /** The broker closes the channel (a 404, a 406): 'close' as amqplib emits it. */
  closeByBroker(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
  /** Acks the code sent, as [tag, multiple] pairs. */
  get acks(): Array<[number, boolean]> {
    return this.frames.flatMap((f) => (f.op === 'ack' ? [[f.tag, f.multiple] as [number, boolean]] : []));
  }
  private check(): void {
    // amqplib throws IllegalOperationError on a closed channel.
    if (this.closed) throw new Error('Channel closed');
  }
}

/** A scripted connection manager: its current connection hands out FakeChannels. */
export class FakeManager extends EventEmitter {
  readonly channels: FakeChannel[] = [];
  connected = true;
  readonly connection = {
    createChannel: async () => this.newChannel(),
    createConfirmChannel: async () => this.newChannel(),
  };

  isConnected(): boolean {
    return this.connected;
  }
  /** The channels the code kept open (not the throwaway ones of passive checks). */
  get working(): FakeChannel[] {
    return this.channels.filter((c) => c.frames.some((f) => f.op !== 'checkQueue' && f.op !== 'close'));
  }
  asManager(): AmqpConnectionManager {
    return this as unknown as AmqpConnectionManager;
  }
  private newChannel(): FakeChannel {
    const ch = new FakeChannel();
    this.channels.push(ch);
    return ch;
  }
}

/** Lets setImmediate callbacks (the consumer's ack flush) and pending promises run. */
export async function turn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
