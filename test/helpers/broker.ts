import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { GetMessage } from 'amqplib';
import { credentialsOf, ManagementClient, portAnswers, RESULTS_BATCH_CONTENT_TYPE, withVhost } from '../../core/index.ts';

/**
 * The broker integration tests use: `AMQP_URL` when set; else the local broker at
 * 127.0.0.1:5672 when it answers; else a RabbitMQ container when Docker is available; else a
 * clear error saying how to provide one.
 */
export interface TestBroker {
  url: string;
  managementUrl?: string | undefined;
}

let cached: Promise<TestBroker> | undefined;

export function testBroker(): Promise<TestBroker> {
  cached ??= findBroker();
  return cached;
}

async function findBroker(): Promise<TestBroker> {
  if (process.env.AMQP_URL) return { url: process.env.AMQP_URL.split(',')[0] as string, managementUrl: process.env.AMQP_MANAGEMENT_URL };
  if (await portAnswers(5672)) return { url: 'amqp://guest:guest@127.0.0.1:5672', managementUrl: process.env.AMQP_MANAGEMENT_URL };
  if (dockerAvailable()) {
    const { RabbitMQContainer } = await import('@testcontainers/rabbitmq');
    const container = await new RabbitMQContainer('rabbitmq:3.13-management').start();
    return { url: container.getAmqpUrl(), managementUrl: `http://${container.getHost()}:${container.getMappedPort(15672)}` };
  }
  throw new Error(
    'No RabbitMQ for the integration tests. Provide one of: AMQP_URL=amqp://user:pass@host:5672; ' +
      'a local broker on 127.0.0.1:5672 (apt-get install rabbitmq-server && rabbitmq-server -detached, ' +
      'then rabbitmq-plugins enable rabbitmq_management); or a running Docker engine (testcontainers starts one).',
  );
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

export interface TestVhost {
  url: string;
  vhost: string;
  managementUrl?: string | undefined;
  mgmt: ManagementClient;
  cleanup(): Promise<void>;
}

/** A fresh vhost for one suite, deleted (with everything in it) by cleanup(). */
export async function createTestVhost(prefix = 'test'): Promise<TestVhost> {
  const broker = await testBroker();
  const vhost = `warren-${prefix}-${randomBytes(4).toString('hex')}`;
  const url = withVhost(broker.url, vhost);
  const mgmt = new ManagementClient({ amqpUrl: url, managementUrl: broker.managementUrl });
  await mgmt.put(mgmt.path('vhosts', vhost), {});
  const { username } = credentialsOf(url);
  await mgmt.put(mgmt.path('permissions', vhost, username), { configure: '.*', write: '.*', read: '.*' });
  return {
    url,
    vhost,
    managementUrl: broker.managementUrl,
    mgmt,
    cleanup: () => mgmt.delete(mgmt.path('vhosts', vhost)),
  };
}

/** Rejects when a promise takes longer than `ms` (uvu has no per-test timeout). */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `fn` until it returns a defined value or `ms` passes. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** uvu swallows errors thrown by hooks: this prints them before rethrowing. */
export function loud<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      console.error('hook failed:', err);
      throw err;
    }
  };
}

/**
 * Takes messages off queues with basic.get until the one for `requestId` (by correlationId or
 * messageId) shows up; keeps the others, since several tests share the queues.
 */
/**
 * A results batch (results a worker sent together) as one message per result, each as the single
 * result message it would have been; any other message as itself.
 */
export function unbatched(m: GetMessage): GetMessage[] {
  if (m.properties.contentType !== RESULTS_BATCH_CONTENT_TYPE) return [m];
  const items = JSON.parse(m.content.toString('utf8')) as Array<{ requestId: string; headers?: Record<string, unknown> }>;
  return items.map(({ headers, ...body }) => ({
    ...m,
    content: Buffer.from(JSON.stringify(body)),
    properties: { ...m.properties, contentType: 'application/json', messageId: body.requestId, correlationId: body.requestId, headers: headers ?? {} },
  }));
}

export function messageTaker(ch: { get(queue: string, options: { noAck: boolean }): Promise<false | GetMessage> }) {
  const seen = new Map<string, GetMessage>();
  const take = (queue: string, requestId: string, ms = 10_000): Promise<GetMessage> =>
    waitFor(
      `${requestId} in ${queue}`,
      async () => {
        for (;;) {
          const m = await ch.get(queue, { noAck: true });
          if (!m) break;
          for (const one of unbatched(m)) seen.set(`${queue}/${one.properties.correlationId ?? one.properties.messageId}`, one);
        }
        return seen.get(`${queue}/${requestId}`);
      },
      ms,
      50,
    );
  return { take, seen };
}
