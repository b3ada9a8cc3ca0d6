import { credentialsOf, vhostOf } from './broker.ts';

/** A queue as GET /api/queues/<vhost> lists it (the fields Warren reads; all but name may be absent). */
export interface ManagementQueue {
  name: string;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  consumers?: number;
  type?: string;
  leader?: string;
  message_stats?: { publish_details?: { rate: number }; deliver_get_details?: { rate: number }; ack_details?: { rate: number }; redeliver?: number };
}

/**
 * A small client for the RabbitMQ management HTTP API. Its base URL is `AMQP_MANAGEMENT_URL`
 * when set, otherwise the AMQP host on port 15672 (or the AMQP port + 10000 for the private
 * nodes Warren starts, which follow rabbitmq-local.md's port layout), with the AMQP URL's
 * credentials.
 */
export class ManagementClient {
  readonly baseUrl: string;
  readonly vhost: string;
  private readonly auth: string;

  constructor(options: { amqpUrl: string; managementUrl?: string | undefined }) {
    this.baseUrl = (options.managementUrl ?? defaultManagementUrl(options.amqpUrl)).replace(/\/$/, '');
    this.vhost = vhostOf(options.amqpUrl);
    const { username, password } = credentialsOf(options.amqpUrl);
    this.auth = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  /** GET a path; undefined on 404. Throws on other failures, naming the URL. */
  async get<T>(path: string, timeoutMs = 5000): Promise<T | undefined> {
    const res = await this.request('GET', path, undefined, timeoutMs);
    if (res.status === 404) return undefined;
    return (await res.json()) as T;
  }

  async put(path: string, body: unknown): Promise<void> {
    await this.request('PUT', path, body);
  }

  async delete(path: string): Promise<void> {
    const res = await this.request('DELETE', path, undefined, 5000, true);
    if (res.status === 404) return;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const res = await this.request('POST', path, body);
    return (await res.json()) as T;
  }

  /** True when the management API answers at all. */
  async available(): Promise<boolean> {
    try {
      await this.request('GET', '/api/overview', undefined, 2000);
      return true;
    } catch {
      return false;
    }
  }

  /** `/api/queues/<vhost>/<name>`-style path with each segment encoded. */
  path(...segments: string[]): string {
    return `/api/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
  }

  private async request(method: string, path: string, body?: unknown, timeoutMs = 5000, allow404 = method === 'GET'): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: this.auth, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new Error(`management API at ${this.baseUrl} did not answer ${method} ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok && !(allow404 && res.status === 404)) {
      const text = await res.text().catch(() => '');
      throw new Error(`management API ${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`);
    }
    return res;
  }
}

export function defaultManagementUrl(amqpUrl: string): string {
  const u = new URL(amqpUrl);
  const port = u.port ? Number(u.port) : u.protocol === 'amqps:' ? 5671 : 5672;
  const mgmtPort = port === 5672 || port === 5671 ? 15672 : port + 10000;
  return `http://${u.hostname}:${mgmtPort}`;
}
