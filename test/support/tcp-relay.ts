import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on loopback that a test can cut and heal: while cut, every open connection is
 * destroyed and new ones are closed at once, as a network partition would look to both ends.
 */
export class CuttableRelay {
  private readonly sockets = new Set<Socket>();
  private isCut = false;

  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(targetPort: number, host = '127.0.0.1'): Promise<CuttableRelay> {
    let relay: CuttableRelay | null = null;
    const server = createServer((client) => relay!.accept(client, targetPort, host));
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, host, resolve); });
    relay = new CuttableRelay(server, (server.address() as { port: number }).port);
    return relay;
  }

  private accept(client: Socket, targetPort: number, host: string): void {
    if (this.isCut) { client.destroy(); return; }
    const upstream = connect(targetPort, host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void { this.isCut = false; }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
