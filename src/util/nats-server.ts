import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from './process.js';
import { freePort, waitForPort } from './net.js';
import { toolPath } from './tools.js';

export interface NatsServerOptions {
  host?: string;
  /** 0 or unset: a free port. */
  port?: number;
  /** JetStream store directory; a fresh temp dir (removed on stop) when unset. */
  storeDir?: string;
  echo?: boolean;
}

/** A real nats-server with JetStream, on loopback. Used by `tollgate up` and by tests. */
export class NatsServer {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly storeDir: string,
    private proc: ManagedProcess,
    private readonly ownsStore: boolean,
    private readonly opts: NatsServerOptions,
  ) {}

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port || (await freePort(host));
    const ownsStore = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'tollgate-nats-'));
    const proc = await NatsServer.spawn(host, port, storeDir, opts.echo ?? false);
    return new NatsServer(`nats://${host}:${port}`, port, storeDir, proc, ownsStore, { ...opts, host, port });
  }

  private static spawn(host: string, port: number, storeDir: string, echo: boolean): Promise<ManagedProcess> {
    return ManagedProcess.start('nats-server', toolPath('nats-server'), ['-a', host, '-p', String(port), '-js', '-sd', storeDir], {
      ready: () => waitForPort(port, host, 15000),
      echo,
    });
  }

  get running(): boolean { return this.proc.running; }
  get pid(): number | undefined { return this.proc.pid; }

  /** Stops the server but keeps its JetStream store, so restart() brings the same streams back. */
  async stop(): Promise<void> { await this.proc.stop(); }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> { this.proc.kill('SIGKILL'); await this.proc.exited; }

  async restart(): Promise<void> {
    if (this.proc.running) await this.proc.stop();
    this.proc = await NatsServer.spawn(this.opts.host!, this.port, this.storeDir, this.opts.echo ?? false);
  }

  /** Stops and removes the store if we created it. */
  async dispose(): Promise<void> {
    await this.proc.stop();
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }
}
