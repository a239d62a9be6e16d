import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { HttpsCertReloader } from '../pki/https-reload.js';
import { spiffeId, type LocalPki, type WorkloadIdentity, type CertFiles } from '../pki/index.js';
import { postWithBearer } from '../util/https-post.js';
import { readCaFile } from '../util/pem-ca.js';

/**
 * Workload certificates in a cluster, bound to the pod's service account and checked with the API
 * server: a pod posts a PKCS#10 request with its projected service-account token (audience
 * `tollgate-controlplane`); the control plane asks the API server (TokenReview) who the token
 * belongs to and signs a short-lived certificate whose only name is that service account's SPIFFE
 * ID. Whatever the request asks for is ignored except its key.
 */

export const DEFAULT_TOKEN_AUDIENCE = 'tollgate-controlplane';

/** The parts of a TokenReview status this reads (authentication.k8s.io/v1). */
export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; extra?: Record<string, string[]> };
  audiences?: string[];
  error?: string;
}

export interface ReviewedWorkload {
  identity: WorkloadIdentity;
  spiffeId: string;
  /** The pod the token is bound to (projected tokens always are). */
  pod: string;
}

export class CertificateRefused extends Error {
  constructor(readonly status: 400 | 401 | 403 | 413 | 502, message: string) {
    super(message);
    this.name = 'CertificateRefused';
  }
}

const SA_USER = /^system:serviceaccount:([a-z0-9.-]{1,253}):([a-z0-9.-]{1,253})$/;

/**
 * Pure: the workload a reviewed token proves. Only a pod-bound service-account token for our
 * audience is accepted: a user's token, an unbound (legacy Secret) token, or one for another
 * audience is refused.
 */
export function workloadFromReview(s: TokenReviewStatus, audience: string, trustDomain: string): ReviewedWorkload {
  if (!s.authenticated) throw new CertificateRefused(401, `the API server did not accept the token${s.error ? `: ${s.error}` : ''}`);
  if (!(s.audiences ?? []).includes(audience)) throw new CertificateRefused(403, `the token is not for audience "${audience}" (project it with that audience)`);
  const m = SA_USER.exec(s.user?.username ?? '');
  if (!m) throw new CertificateRefused(403, `"${s.user?.username ?? ''}" is not a service account`);
  const pod = s.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0];
  if (!pod) throw new CertificateRefused(403, 'the token is not bound to a pod (use a projected service-account token)');
  const identity: WorkloadIdentity = { trustDomain, namespace: m[1]!, serviceAccount: m[2]! };
  return { identity, spiffeId: spiffeId(identity), pod };
}

/** Who the token belongs to, per the API server. */
export interface TokenReviewer { review(token: string, audience: string): Promise<TokenReviewStatus> }

export interface ApiServerAccess {
  /** https://… of the API server. */
  server: string;
  /**
   * The control plane's own bearer token (needs `create` on tokenreviews, as the shipped
   * ClusterRole grants); a function is called for every review, since the kubelet rotates a
   * projected token in its file.
   */
  token: string | (() => string);
  /** PEM CA of the API server. */
  ca: string;
}

/** In a pod: the API server and credentials Kubernetes mounts for the control plane's service account. */
export function inClusterAccess(): ApiServerAccess {
  const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('not in a cluster (KUBERNETES_SERVICE_HOST is unset): give the API server explicitly');
  return { server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, token: () => readFileSync(`${dir}/token`, 'utf8').trim(), ca: readCaFile(`${dir}/ca.crt`) };
}

/** TokenReview against the API server. */
export function apiServerReviewer(access: ApiServerAccess): TokenReviewer {
  return {
    async review(token, audience) {
      const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [audience] } });
      let own: string;
      try { own = typeof access.token === 'function' ? access.token() : access.token; } catch (e) {
        throw new CertificateRefused(502, `cannot read the control plane's API server token: ${(e as Error).message}`);
      }
      let answer: { status: number; text: string };
      try {
        answer = await postWithBearer({ url: `${access.server}/apis/authentication.k8s.io/v1/tokenreviews`, ca: access.ca, token: own, body, timeoutMs: 5000 });
      } catch (e) {
        throw new CertificateRefused(502, `TokenReview: ${(e as Error).message}`);
      }
      if (answer.status !== 201 && answer.status !== 200) throw new CertificateRefused(502, `TokenReview failed: HTTP ${answer.status}: ${answer.text.slice(0, 300)}`);
      try { return ((JSON.parse(answer.text) as { status?: TokenReviewStatus }).status) ?? {}; } catch { throw new CertificateRefused(502, 'TokenReview answer is not JSON'); }
    },
  };
}

export interface WorkloadCertServerOptions {
  host: string;
  port: number;
  /** The control plane's serving certificate (from the mesh CA, so pods can check it with ca.crt). */
  tls: CertFiles;
  pki: LocalPki;
  reviewer: TokenReviewer;
  trustDomain: string;
  audience?: string;
  /** Re-read the serving certificate files this often (default 30 s, 0: never). */
  reloadMs?: number;
  /** Certificate lifetime; short, since the pod renews it at half its lifetime. Default 1 day. */
  lifetimeMs?: number;
  log?: (msg: string) => void;
}

const MAX_BODY = 16 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY) throw new CertificateRefused(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `POST /v1/certificates` with `Authorization: Bearer <projected token>` and `{"csr": "<PEM>"}`;
 * answers `{"certificate": "<PEM>", "ca": "<PEM>", "spiffe_id": "…"}`.
 */
export class WorkloadCertServer {
  private constructor(private readonly server: Server, readonly port: number, private readonly reloader: HttpsCertReloader) {}

  static async start(o: WorkloadCertServerOptions): Promise<WorkloadCertServer> {
    const audience = o.audience ?? DEFAULT_TOKEN_AUDIENCE;
    const log = o.log ?? (() => undefined);
    const pem = HttpsCertReloader.read(o.tls);
    const server = createServer({ cert: pem.cert, key: pem.key, minVersion: 'TLSv1.2' }, (req, res) => {
      void (async () => {
        if (req.url !== '/v1/certificates') { send(res, 404, { error: 'POST /v1/certificates' }); return; }
        if (req.method !== 'POST') { res.setHeader('allow', 'POST'); send(res, 405, { error: 'use POST' }); return; }
        const auth = req.headers.authorization ?? '';
        if (!auth.startsWith('Bearer ') || auth.length < 8) throw new CertificateRefused(401, `send the pod's projected service-account token (audience "${audience}") as a Bearer token`);
        let csr: unknown;
        try { csr = (JSON.parse(await readBody(req)) as { csr?: unknown }).csr; } catch (e) {
          if (e instanceof CertificateRefused) throw e;
          throw new CertificateRefused(400, 'the body must be JSON: {"csr": "<PEM certificate request>"}');
        }
        if (typeof csr !== 'string') throw new CertificateRefused(400, 'the body must be JSON: {"csr": "<PEM certificate request>"}');
        const w = workloadFromReview(await o.reviewer.review(auth.slice(7).trim(), audience), audience, o.trustDomain);
        let certificate: string;
        try {
          certificate = await o.pki.signCsr(csr, { commonName: `${w.identity.namespace}/${w.pod}`, uris: [w.spiffeId], usage: 'client', days: (o.lifetimeMs ?? 86_400_000) / 86_400_000 });
        } catch (e) {
          throw new CertificateRefused(400, (e as Error).message);
        }
        log(`workload certificate issued: ${w.spiffeId} (pod ${w.identity.namespace}/${w.pod})`);
        send(res, 200, { certificate, ca: o.pki.caPem, spiffe_id: w.spiffeId });
      })().catch((e: Error) => {
        const status = e instanceof CertificateRefused ? e.status : 500;
        log(`workload certificate refused (${status}): ${e.message}`);
        if (!res.headersSent) send(res, status, { error: e.message });
      });
    });
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => { server.off('error', reject); resolve(); });
    });
    // The same files as the xDS server, which re-reads them too: a renewed Secret needs no restart.
    const reloader = new HttpsCertReloader(server, o.tls, (e) => log(e.kind === 'reloaded' ? 'workload certificate endpoint: serving certificate reloaded'
      : `workload certificate endpoint: keeping the current serving certificate (${e.kind}: ${e.error})`)).every(o.reloadMs ?? 30_000);
    return new WorkloadCertServer(server, (server.address() as AddressInfo).port, reloader);
  }

  async close(): Promise<void> {
    this.reloader.stop();
    await new Promise<void>((resolve) => { this.server.close(() => resolve()); this.server.closeAllConnections(); });
  }
}
