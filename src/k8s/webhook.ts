import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { admit, parseAdmissionReview, review, ReviewError, type FailurePolicy } from './admission.js';
import type { InjectOptions } from './mutate.js';
import { HttpsCertReloader } from '../pki/https-reload.js';

export interface WebhookLogEntry {
  level: 'info' | 'warn' | 'error';
  msg: string;
  [key: string]: unknown;
}

export interface WebhookOptions {
  /** PEM certificate chain the API server verifies (its caBundle must match). */
  certFile: string;
  keyFile: string;
  /** Default 0.0.0.0: the API server reaches the webhook through its Service. */
  host?: string;
  /** Default 8443; 0 picks a free port. */
  port?: number;
  inject?: InjectOptions;
  /** See admission.ts FailurePolicy. Default Fail. */
  failurePolicy?: FailurePolicy;
  /** Reviews larger than this are refused with 413. Default 8 MiB (a pod is at most ~1.5 MiB in etcd). */
  maxBodyBytes?: number;
  /** How often the certificate files are re-read, so a rotated certificate is served without a restart. Default 30 s; 0 disables. */
  reloadIntervalMs?: number;
  log?: (entry: WebhookLogEntry) => void;
}

const DEFAULT_MAX_BODY = 8 * 1024 * 1024;

function defaultLog(e: WebhookLogEntry): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n');
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `review of ${declared} bytes exceeds the ${limit}-byte limit`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        // Stop keeping it but drain the rest, so the 413 still reaches the client.
        req.off('data', onData);
        req.resume();
        reject(new HttpError(413, `review exceeds the ${limit}-byte limit`));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (status === 413) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(text);
}

/**
 * The mutating admission webhook: POST /mutate takes an AdmissionReview v1 and answers with the
 * sidecar JSON Patch; GET /healthz says it is up. A bad request gets a 4xx with a message and the
 * server carries on; nothing a client sends can stop it.
 */
export class WebhookServer {
  private reloader: HttpsCertReloader;

  private constructor(private readonly server: Server, private readonly opts: WebhookOptions, private readonly log: (e: WebhookLogEntry) => void) {
    this.reloader = new HttpsCertReloader(server, { cert: opts.certFile, key: opts.keyFile }, (e) => {
      if (e.kind === 'reloaded') log({ level: 'info', msg: 'certificate reloaded' });
      else if (e.kind === 'unreadable') log({ level: 'warn', msg: 'cannot read certificate files; keeping the current ones', error: e.error });
      else log({ level: 'warn', msg: 'new certificate files are not a usable pair; keeping the current ones', error: e.error });
    });
  }

  static async start(opts: WebhookOptions): Promise<WebhookServer> {
    const pem = HttpsCertReloader.read({ cert: opts.certFile, key: opts.keyFile });
    const log = opts.log ?? defaultLog;
    const server = createServer({ cert: pem.cert, key: pem.key, minVersion: 'TLSv1.2' });
    const self = new WebhookServer(server, opts, log);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void self.handle(req, res));
    // Handshake failures (scanners, a stale caBundle) are the client's problem, not a reason to stop.
    server.on('tlsClientError', (err) => log({ level: 'warn', msg: 'TLS handshake failed', error: err.message }));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 8443, opts.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log({ level: 'error', msg: 'server error', error: err.message }));
    self.reloader.every(opts.reloadIntervalMs ?? 30_000);
    return self;
  }

  get port(): number { return (this.server.address() as AddressInfo).port; }
  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `https://${host}:${a.port}`;
  }

  /**
   * Re-reads the certificate files and serves them to new connections if they changed (cert-manager
   * rewrites the Secret volume in place). A half-written or mismatched pair keeps the old one.
   * Returns true when a new certificate was loaded.
   */
  reloadCertificates(): boolean {
    return this.reloader.reload();
  }

  /** Stops accepting connections, lets requests in flight finish (at most graceMs), then returns. */
  async close(graceMs = 5000): Promise<void> {
    this.reloader.stop();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => this.server.closeAllConnections(), graceMs);
      force.unref();
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/healthz') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'use GET /healthz');
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
        return;
      }
      if (path !== '/mutate') throw new HttpError(404, `no such endpoint ${path}: use POST /mutate or GET /healthz`);
      if (req.method !== 'POST') throw new HttpError(405, 'use POST /mutate with an AdmissionReview');
      const ct = String(req.headers['content-type'] ?? 'application/json');
      if (!/^application\/json\b/i.test(ct)) throw new HttpError(415, `content-type must be application/json, got "${ct}"`);
      const raw = await readBody(req, this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        throw new HttpError(400, `body is not valid JSON: ${(e as Error).message}`);
      }
      let request;
      try {
        request = parseAdmissionReview(body);
      } catch (e) {
        if (e instanceof ReviewError) throw new HttpError(400, `malformed AdmissionReview: ${e.message}`);
        throw e;
      }
      let decision;
      try {
        decision = admit(request, { inject: this.opts.inject, failurePolicy: this.opts.failurePolicy });
      } catch (e) {
        if (e instanceof ReviewError) throw new HttpError(400, `malformed AdmissionReview: ${e.message}`);
        throw e;
      }
      this.log({
        level: decision.outcome === 'denied' || decision.outcome === 'error' ? 'warn' : 'info',
        msg: `admission ${decision.outcome}`,
        uid: request.uid,
        namespace: request.namespace,
        detail: decision.detail,
      });
      send(res, 200, review(decision.response));
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      const message = (e as Error).message;
      this.log({ level: status >= 500 ? 'error' : 'warn', msg: 'request refused', status, path, error: message });
      send(res, status, { error: message });
    }
  }
}
