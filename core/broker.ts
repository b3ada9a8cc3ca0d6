import amqp, { type AmqpConnectionManager } from 'amqp-connection-manager';
import { coalesceWrites } from './coalesce-writes.ts';
import type { Logger } from './logger.ts';
import { redactUrl } from './logger.ts';
import { type Registry, reconnectCounter } from './metrics.ts';

export type { AmqpConnectionManager };

export interface BrokerOptions {
  urls: readonly string[];
  logger: Logger;
  /** A name shown in the broker's connection list (management UI). */
  connectionName: string;
  heartbeatSeconds?: number;
  /** How long one connection attempt (TCP and the AMQP handshake) may take; default 5000. */
  connectTimeoutMs?: number;
  reconnectSeconds?: number;
  /** Counts reconnects as `warren_broker_reconnects_total{connection}` in this registry. */
  metrics?: Registry;
}

/**
 * One long-lived, reconnecting connection per process. amqp-connection-manager round-robins over
 * the URL list, so a cluster's nodes are tried in turn when one is gone.
 */
export function connectBroker(options: BrokerOptions): AmqpConnectionManager {
  const log = options.logger.child({ component: 'broker' });
  const conn = amqp.connect([...options.urls], {
    // 5 s: a node cut off without a TCP reset is noticed after two missed beats (10-15 s), not 20-30.
    heartbeatIntervalInSeconds: options.heartbeatSeconds ?? 5,
    reconnectTimeInSeconds: options.reconnectSeconds ?? 1,
    // A connect to a node cut off without a TCP reset would hang for the OS's connect timeout
    // (minutes); amqplib gives up after `timeout` until the connection is open, and the manager
    // moves on to the next URL.
    connectionOptions: {
      clientProperties: { connection_name: options.connectionName },
      timeout: options.connectTimeoutMs ?? 5000,
      // TCP_NODELAY (Nagle's algorithm off). With Nagle, a publish written behind acks (which get
      // no reply) waited for the broker's delayed TCP ACK (~40 ms): a worker's results message
      // waited ~45 ms for its confirm instead of a few (measured in the peers bench). Nagle did
      // coalesce a producer's publishes (enqueue 0.92-0.97 of raw without it, 1.04-1.11 with it);
      // the frames of one event-loop turn now leave in one write instead (coalesceWrites below).
      noDelay: true,
    },
  });
  let everConnected = false;
  let lastFailure = '';
  const reconnects = options.metrics ? reconnectCounter(options.metrics).labels(options.connectionName.replace(/ pid \d+$/, '')) : undefined;
  conn.on('connect', ({ url, connection }) => {
    if (!coalesceWrites(connection)) log.debug('connection socket not found; frames are written one by one');
    log.info(
      { broker: redactUrl(String(typeof url === 'string' ? url : (url as { hostname?: string }).hostname)) },
      everConnected ? 'broker reconnected' : 'broker connected',
    );
    if (everConnected) reconnects?.inc();
    everConnected = true;
  });
  conn.on('disconnect', ({ err }) => {
    log.warn({ err }, 'broker disconnected; reconnecting');
  });
  let attempts = 0;
  conn.on('connectFailed', ({ err, url }) => {
    attempts += 1;
    log.debug({ attempt: attempts, broker: redactUrl(String(url)) }, 'connect attempt failed');
    // Logged once per distinct failure so a long outage does not flood the log.
    const key = `${String(url)}:${err?.message}`;
    if (key === lastFailure) return;
    lastFailure = key;
    log.warn({ err: { message: err?.message }, broker: redactUrl(String(url)) }, everConnected ? 'broker unreachable; retrying' : 'waiting for the broker');
  });
  conn.on('blocked', ({ reason }) => log.warn({ reason }, 'broker blocked the connection'));
  conn.on('unblocked', () => log.info('broker unblocked the connection'));
  return conn;
}

/** The vhost an AMQP URL names ("/" when its path is empty). */
export function vhostOf(url: string): string {
  const u = new URL(url);
  const path = u.pathname.replace(/^\//, '');
  return path === '' ? '/' : decodeURIComponent(path);
}

/** Replaces the vhost of an AMQP URL. */
export function withVhost(url: string, vhost: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(vhost)}`;
  return u.toString();
}

/** Credentials of an AMQP URL (guest/guest when absent, as amqplib does). */
export function credentialsOf(url: string): { username: string; password: string } {
  const u = new URL(url);
  return {
    username: u.username ? decodeURIComponent(u.username) : 'guest',
    password: u.password ? decodeURIComponent(u.password) : 'guest',
  };
}
