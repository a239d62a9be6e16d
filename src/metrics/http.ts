import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Readiness, StatusDoc } from './status.js';

export const DEFAULT_ADMIN_PORT = 9464;

export interface AdminHttpOptions {
  /** Default 127.0.0.1: the admin endpoints have no authentication. */
  host?: string;
  /** Default 9464; 0 picks a free port. */
  port?: number;
  registry: Registry;
  /** The /status document (authz's StatusDoc; other components serve their own shape). */
  status: () => StatusDoc | object;
  /** A bare boolean gives a generic reason when false; a Readiness says why. */
  ready: () => boolean | Readiness;
}

const ENDPOINTS = '/metrics, /healthz, /readyz, /status';

function readinessOf(r: boolean | Readiness): Readiness {
  if (typeof r !== 'boolean') return r;
  return r ? { ready: true, reasons: [] } : { ready: false, reasons: ['not ready'] };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const text = (res: ServerResponse, status: number, body: string): void => send(res, status, 'text/plain; charset=utf-8', body);
const json = (res: ServerResponse, status: number, body: unknown): void => send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body, null, 2)}\n`);

/**
 * The authz admin listener: Prometheus scrape, liveness, readiness and a status document. It is
 * separate from the gRPC port so a scrape or probe never competes with ext_authz traffic.
 */
export class AdminHttpServer {
  private constructor(private readonly server: Server, readonly host: string, readonly port: number) {}

  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  static async start(opts: AdminHttpOptions): Promise<AdminHttpServer> {
    const host = opts.host ?? '127.0.0.1';
    const server = createServer((req, res) => {
      AdminHttpServer.handle(opts, req, res).catch((e: Error) => {
        if (!res.headersSent) text(res, 500, `tollgate admin: ${e.message}\n`);
        else res.destroy(e);
      });
    });
    // Probes and scrapes are short; a stuck client must not hold a socket for minutes.
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? DEFAULT_ADMIN_PORT, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    return new AdminHttpServer(server, host, port);
  }

  private static async handle(opts: AdminHttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      text(res, 405, `tollgate admin: ${req.method} is not supported; use GET\n`);
      return;
    }
    switch (path) {
      case '/metrics':
        send(res, 200, opts.registry.contentType, await opts.registry.metrics());
        return;
      case '/healthz':
        // Liveness: answering at all is the proof. Readiness is a separate question.
        text(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const r = readinessOf(opts.ready());
        if (r.ready) text(res, 200, 'ready\n');
        else text(res, 503, `not ready:\n${r.reasons.map((x) => `- ${x}\n`).join('')}`);
        return;
      }
      case '/status':
        json(res, 200, opts.status());
        return;
      default:
        text(res, 404, `tollgate admin: no such endpoint ${path}; try ${ENDPOINTS}\n`);
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
