import { readFileSync } from 'node:fs';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { checkCaPem } from '../util/pem-ca.js';
import { certificateIdentity, inboxPrefixFor } from './identity.js';
import { describeServers, type NatsSettings } from './settings.js';

/**
 * The one way a Tollgate process connects to NATS. The runtime opens one connection and hands it to
 * every capability (bundle source, budget store, decision-log replica, publisher), so there is one
 * URL setting, one credential and one reconnect policy per process.
 */

/** Once connected, reconnect for ever: state (bundles, budgets, the log replica) comes back with NATS. */
export const RECONNECT_POLICY = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
  pingInterval: 5000,
  maxPingOut: 2,
} as const satisfies Partial<ConnectionOptions>;

export interface ConnectOptions {
  /** Shown by the server (connz) and in its logs. */
  name: string;
  /** Keep retrying the first connection this long before giving up (default 10 s). */
  firstConnectMs?: number;
}

/** A handle the capabilities share; `identity` is the SPIFFE ID the server knows this client by. */
export interface NatsHandle {
  readonly nc: NatsConnection;
  readonly settings: NatsSettings;
  readonly identity: string | null;
}

/** connect() options for settings: TLS files read now, so a missing file fails here, by name. */
export function connectionOptions(settings: NatsSettings, name: string): { opts: ConnectionOptions; identity: string | null } {
  const opts: ConnectionOptions = { servers: settings.servers, name, timeout: 3000, ...RECONNECT_POLICY };
  if (!settings.tls) return { opts, identity: null };
  const read = (what: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`NATS TLS ${what} ${file}: ${(e as Error).message}`);
    }
  };
  const identity = certificateIdentity(settings.tls.cert);
  // An empty CA would mean the system's roots to Node's TLS: refused (util/pem-ca.ts).
  opts.tls = { ca: checkCaPem(read('CA', settings.tls.ca), `NATS TLS CA ${settings.tls.ca}`), cert: read('certificate', settings.tls.cert), key: read('key', settings.tls.key) };
  // Replies come back on subjects only this identity may subscribe to (see permissions.ts).
  opts.inboxPrefix = inboxPrefixFor(identity);
  return { opts, identity };
}

/** Says what to do about the common ways a secured NATS refuses a client. */
export function explainConnectError(e: Error, settings: NatsSettings): string {
  const where = describeServers(settings);
  const m = e.message;
  if (/Authorization Violation|authentication/i.test(m)) {
    return `NATS at ${where} refused this client's credential (${m}): its certificate's SPIFFE ID is not a user of that server. Use the certificate \`tollgate up\` issued for this component, or add the ID to the server's users`;
  }
  if (/requires? (a )?tls|tls required|secure connection/i.test(m) || (!settings.tls && /certificate|tls|ssl|handshake/i.test(m))) {
    return `NATS at ${where} requires TLS (${m}): give --nats-ca, --nats-cert and --nats-key (the files \`tollgate up\` prints)`;
  }
  if (/certificate|tls|ssl|handshake|self.signed/i.test(m)) {
    return `TLS with NATS at ${where} failed (${m}): check --nats-ca is the CA that issued the server certificate, and that the client certificate is valid`;
  }
  if (!settings.tls && /timeout/i.test(m)) {
    return `NATS at ${where} did not complete a connection (${m}); if it requires TLS and client certificates, give --nats-ca, --nats-cert and --nats-key`;
  }
  return `cannot connect to NATS at ${where}: ${m}`;
}

function isRefusal(message: string): boolean {
  return /refused this client's credential|requires TLS|TLS with NATS/.test(message);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * The process's NATS connection, owned by the runtime and handed to each capability. It connects in
 * the background (NATS may start after us, and a log replica must not keep authz from starting);
 * a capability that cannot work without NATS awaits ready() with its own deadline and fails with
 * the reason, never silently.
 */
export class NatsLink implements NatsHandle {
  private conn: NatsConnection | null = null;
  private lastError: string | null = null;
  private closed = false;
  private readonly waiters: Array<{ resolve: (nc: NatsConnection) => void; reject: (e: Error) => void }> = [];
  readonly identity: string | null;
  private readonly opts: ConnectionOptions;

  private constructor(readonly settings: NatsSettings, name: string) {
    const { opts, identity } = connectionOptions(settings, name);
    this.opts = opts;
    this.identity = identity;
  }

  /** Starts connecting; throws only for settings that can never work (unreadable TLS files). */
  static open(settings: NatsSettings, o: ConnectOptions): NatsLink {
    const link = new NatsLink(settings, o.name);
    void link.loop();
    return link;
  }

  /** The connection once up (after that the client reconnects by itself, RECONNECT_POLICY). */
  get nc(): NatsConnection {
    if (!this.conn) throw new Error(`not connected to NATS at ${describeServers(this.settings)} yet${this.lastError ? `: ${this.lastError}` : ''}`);
    return this.conn;
  }

  get connected(): boolean { return this.conn !== null && !this.conn.isClosed(); }
  get error(): string | null { return this.lastError; }

  /** Resolves with the connection; rejects after timeoutMs with why it is not there. */
  ready(timeoutMs = 10_000): Promise<NatsConnection> {
    if (this.conn) return Promise.resolve(this.conn);
    if (this.closed) return Promise.reject(new Error('NATS link closed'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(this.lastError ?? `no connection to NATS at ${describeServers(this.settings)} after ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (nc: NatsConnection): void => { clearTimeout(t); resolve(nc); },
        reject: (e: Error): void => { clearTimeout(t); reject(e); },
      };
      this.waiters.push(w);
    });
  }

  private async loop(): Promise<void> {
    for (let delay = 200; !this.closed; delay = Math.min(delay * 2, 2000)) {
      try {
        const nc = await connect(this.opts);
        if (this.closed) { await nc.close().catch(() => undefined); return; }
        this.conn = nc;
        this.lastError = null;
        for (const w of this.waiters.splice(0)) w.resolve(nc);
        return;
      } catch (e) {
        this.lastError = explainConnectError(e as Error, this.settings);
        // A refusal will not change by waiting: whoever waits hears it now. The loop keeps trying
        // (the server's users may be fixed meanwhile), more slowly.
        if (isRefusal(this.lastError)) {
          for (const w of this.waiters.splice(0)) w.reject(new Error(this.lastError));
          delay = 2000;
        }
        await sleep(delay);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const nc = this.conn;
    this.conn = null;
    if (nc) await nc.close().catch(() => undefined);
  }
}

/** Connects now or fails with what to fix (CLI commands that need NATS for one job). */
export async function openNats(settings: NatsSettings, o: ConnectOptions): Promise<NatsLink> {
  const link = NatsLink.open(settings, o);
  try {
    await link.ready(o.firstConnectMs ?? 10_000);
    return link;
  } catch (e) {
    await link.close();
    throw e;
  }
}
