import type { ManagementClient } from '../core/index.ts';

/**
 * What the harness and the scenarios need from the RabbitMQ nodes under test, whether they are
 * private nodes on loopback ports (RabbitNodes) or nodes in network namespaces of their own
 * (NetnsCluster).
 */
export interface BrokerCluster {
  /** One AMQP URL per node, in node order. */
  readonly amqpUrls: string[];
  /** Erlang node names, in node order. */
  readonly nodeNames: string[];
  /** Fails fast, naming what is in the way, when a leftover or another run holds our ports or names. */
  assertPortsFree(): Promise<void>;
  start(): Promise<void>;
  kill(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  stopNode(i: number): Promise<void>;
  stopAll(options: { graceful: boolean; removeData: boolean }): Promise<void>;
  /**
   * A management client on a node that answers (and, for a partitioned cluster, sits with the
   * majority); asks again for up to `waitMs` (default 0: one round) before it gives up.
   */
  management(waitMs?: number): Promise<ManagementClient>;
  /** A live node's AMQP and management URLs, for `warren topology apply`. */
  liveUrl(): Promise<{ amqpUrl: string; managementUrl: string }>;
  leaderOf(queue: string): Promise<string>;
  indexOf(nodeName: string): number;
  waitQueueMembersOnline(queue: string, timeoutMs?: number): Promise<void>;
}
