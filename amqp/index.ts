/**
 * The one AMQP layer of Warren, below the worker, the producer, the API and the dead-letter tools:
 * a channel holder that recovers one channel without dropping the others, a confirm publisher
 * (deadlines, blocked handling, returns matched per message) and a consumer (delivery tags bound
 * to their channel, ack batching, the ack barrier).
 */
export { ackBarrier } from './ack-barrier.ts';
export { bounded, CLOSE_STEP_MS } from './bounded.ts';
export { ChannelHolder, type ChannelHolderOptions } from './channel-holder.ts';
export { type ConfirmChannelSource, ConfirmPublisher, type ConfirmPublisherOptions, type Envelope } from './confirm-publisher.ts';
export { Consumer, type ConsumerOptions, type Delivery, type DeliverySource } from './consumer.ts';
export { type DropIfSilentOptions, dropConnection, dropIfSilent } from './drop-connection.ts';
export { exists } from './passive.ts';
