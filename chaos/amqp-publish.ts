import { connect } from 'amqplib';

/**
 * Publishes raw bodies straight to an exchange with publisher confirms, bypassing the API: how a
 * misbehaving producer puts a malformed message on the queue. Resolves when the broker confirmed.
 */
export async function publishRaw(amqpUrl: string, exchange: string, routingKey: string, messages: { body: Buffer; messageId: string }[]): Promise<void> {
  const conn = await connect(amqpUrl);
  try {
    const ch = await conn.createConfirmChannel();
    for (const m of messages) {
      ch.publish(exchange, routingKey, m.body, { persistent: true, messageId: m.messageId, contentType: 'application/json' });
    }
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close().catch(() => {
      // Already closed by the broker: nothing left to release.
    });
  }
}
