import { readFileSync } from 'node:fs';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { uriSans } from './san.js';
import { parseSpiffeId, type WorkloadIdentity } from './identity.js';
import type { CertFiles } from './local.js';
import { checkCaPem } from '../util/pem-ca.js';

/**
 * mTLS for the mesh's gRPC servers (xDS, authz). The handshake asks every client for a certificate
 * and Node's TLS checks it against the mesh CA, but an unverified client is not dropped at the
 * handshake: it reaches the handler, which refuses it with a gRPC status that says why. A refusal
 * the client can read (and the server can log and count) beats a reset nobody can diagnose; the
 * chain check itself stays OpenSSL's, never ours.
 */

/** A workload's certificate, key and the mesh CA its peers are checked against. */
export type TlsFiles = CertFiles;

function readPair(files: TlsFiles): { cert: Buffer; key: Buffer; ca: Buffer } {
  const read = (what: string, f: string): Buffer => {
    try { return readFileSync(f); } catch (e) { throw new Error(`TLS ${what} ${f}: ${(e as Error).message}`); }
  };
  // An empty CA would mean the system's roots to Node's TLS: refused (util/pem-ca.ts).
  return { cert: read('certificate', files.cert), key: read('key', files.key), ca: checkCaPem(read('CA', files.ca), `TLS CA ${files.ca}`) };
}

class MeshServerCredentials extends grpc.ServerCredentials {
  private timer: NodeJS.Timeout | undefined;
  private current: { cert: Buffer; key: Buffer; ca: Buffer };

  constructor(private readonly files: TlsFiles, private readonly reloadMs: number) {
    const pair = readPair(files);
    // requestCert + rejectUnauthorized:false: OpenSSL verifies, the handler decides (see above).
    super({ requestCert: true, rejectUnauthorized: false }, pair);
    this.current = pair;
  }

  _equals(other: grpc.ServerCredentials): boolean { return other === this; }

  // Short-lived certificates are renewed on disk; servers pick them up without a restart. A pair
  // that does not load (a certificate replaced before its key) is skipped until it does.
  override _addWatcher(watcher: Parameters<grpc.ServerCredentials['_addWatcher']>[0]): void {
    super._addWatcher(watcher);
    if (this.timer || this.reloadMs <= 0) return;
    this.timer = setInterval(() => this.reload(), this.reloadMs);
    this.timer.unref();
  }

  override _removeWatcher(watcher: Parameters<grpc.ServerCredentials['_removeWatcher']>[0]): void {
    super._removeWatcher(watcher);
    if (this.getWatcherCount() === 0 && this.timer) { clearInterval(this.timer); this.timer = undefined; }
  }

  private reload(): void {
    let next: { cert: Buffer; key: Buffer; ca: Buffer };
    try {
      next = readPair(this.files);
      if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key) && next.ca.equals(this.current.ca)) return;
      createSecureContext(next);
    } catch {
      return;
    }
    this.current = next;
    this.updateSecureContextOptions(next);
  }
}

/**
 * Server credentials that request a client certificate from `files.ca`'s mesh; the files are
 * re-read every `reloadMs` (default 30 s, 0: never) and new connections get the new pair.
 */
export function meshServerCredentials(files: TlsFiles, reloadMs = 30_000): grpc.ServerCredentials {
  return new MeshServerCredentials(files, reloadMs);
}

/** Client credentials for a mesh workload: its certificate, and the mesh CA to check the server. */
export function meshClientCredentials(files: TlsFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(checkCaPem(readFileSync(files.ca), `TLS CA ${files.ca}`), readFileSync(files.key), readFileSync(files.cert));
}

export type PeerCheck =
  | { ok: true; spiffeId: string; identity: WorkloadIdentity; commonName?: string }
  | { ok: false; reason: 'no_certificate' | 'bad_identity'; message: string };

interface HasAuthContext { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }

/**
 * The caller's verified workload identity: grpc-js reports a peer certificate only when the TLS
 * layer verified it against the CA, so "none" covers no certificate, another CA and an expired one.
 * The certificate must carry exactly one SPIFFE ID of the `ns/<ns>/sa/<sa>` form.
 */
export function verifiedPeer(call: HasAuthContext, trustDomain: string): PeerCheck {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  if (!cert?.raw) {
    return { ok: false, reason: 'no_certificate', message: 'a client certificate issued by the mesh CA is required (none was presented, or it did not verify)' };
  }
  const spiffe = uriSans(cert.raw).filter((u) => u.startsWith('spiffe://'));
  if (spiffe.length !== 1) return { ok: false, reason: 'bad_identity', message: `the client certificate must carry exactly one SPIFFE ID (it has ${spiffe.length})` };
  const id = parseSpiffeId(spiffe[0]!);
  if (!id) return { ok: false, reason: 'bad_identity', message: `${spiffe[0]} is not a spiffe://<trust-domain>/ns/<ns>/sa/<sa> identity` };
  if (id.trustDomain !== trustDomain) return { ok: false, reason: 'bad_identity', message: `${spiffe[0]} is not in trust domain ${trustDomain}` };
  const cn = cert.subject?.CN;
  return { ok: true, spiffeId: spiffe[0]!, identity: id, ...(typeof cn === 'string' ? { commonName: cn } : {}) };
}
