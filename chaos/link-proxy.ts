import { connect, createServer, type Server, type Socket } from 'node:net';

/** How the proxy treats bytes right now. */
export type LinkMode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'stall' };

interface Pair {
  client: Socket;
  upstream: Socket;
}

/**
 * A TCP proxy the suite owns, between one client and one node: the kernel here has no netem, so
 * slow, stalled and reset links come from here. `stall` stops forwarding in both directions
 * (bytes wait in the proxy, the sockets stay open: the peers see silence, as on a black-holed
 * link); `reset` then destroys every connection with a TCP RST; `delay` holds each chunk.
 * New connections during a stall are accepted and stalled too.
 */
export class LinkProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private mode: LinkMode = { kind: 'pass' };
  private readonly held: (() => void)[] = [];
  port = 0;
  connections = 0;
  resets = 0;

  constructor(
    readonly name: string,
    private readonly target: { host: string; port: number },
  ) {}

  async listen(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this.port;
  }

  /** The URL a client uses to reach the node through this proxy. */
  url(query = ''): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}${query}`;
  }

  setMode(mode: LinkMode): void {
    this.mode = mode;
    if (mode.kind !== 'stall') for (const release of this.held.splice(0)) release();
  }

  get current(): LinkMode {
    return this.mode;
  }

  /** TCP RST on every open connection (client and node side), and back to passing bytes. */
  reset(): number {
    const n = this.pairs.size;
    for (const p of [...this.pairs]) {
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
    }
    this.pairs.clear();
    this.resets += n;
    this.held.splice(0);
    this.mode = { kind: 'pass' };
    return n;
  }

  get open(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.reset();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.connections += 1;
    const upstream = connect(this.target);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  /** Forwards chunk by chunk through the current mode, keeping their order. */
  private pipe(from: Socket, to: Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      from.pause();
      chain = chain
        .then(() => this.gate())
        .then(() => {
          if (!to.destroyed) to.write(chunk);
          from.resume();
        });
    });
  }

  private gate(): Promise<void> {
    const m = this.mode;
    if (m.kind === 'pass') return Promise.resolve();
    if (m.kind === 'delay') return new Promise((resolve) => setTimeout(resolve, m.ms));
    return new Promise((resolve) => this.held.push(resolve));
  }
}
