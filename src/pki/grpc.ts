import { readFileSync } from 'node:fs';
import { createSecureContext, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { uriSans } from './san.js';
import { parseSpiffeId, type WorkloadIdentity } from './identity.js';
import type { CertFiles } from './local.js';
import { checkCaPem } from '../util/pem-ca.js';

/**
 * mTLS for the mesh's gRPC servers (xDS, authz). The handshake asks every client for a certificate
 * and Node's TLS checks it against the mesh CA (the chain check stays OpenSSL's, never ours). A
 * client that presents none, or one that does not verify, fails the handshake: its connection is
 * closed before HTTP/2 starts, so it holds no session, no stream and no file descriptor beyond the
 * handshake. (Letting it through to a handler that answers UNAUTHENTICATED made the refusal
 * readable, but only once a call arrived: a connection that never made one stayed open for good.)
 * The client sees a TLS alert or a reset, and grpc-js callers get UNAVAILABLE. What is decided
 * per call is the identity: exactly one SPIFFE ID of the trust domain (verifiedPeer), and for
 * each server whom it admits.
 *
 * A connection has MESH_HANDSHAKE_TIMEOUT_MS from accept to a completed handshake, counted from
 * the accept and not from its last byte (Node's `handshakeTimeout`), whether it sends nothing (a
 * plain TCP connection) or trickles a ClientHello.
 */

/** Node's TLS default is 120 s; a mesh peer completes its handshake in milliseconds. */
export const MESH_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * A connection with no call in flight for this long gets a GOAWAY and is closed
 * (`grpc.max_connection_idle_ms`). A live ADS stream is a call in flight, and Envoy reopens
 * an ext_authz connection on its next check.
 */
export const MESH_CONNECTION_IDLE_MS = 5 * 60_000;

/**
 * grpc.Server options for a mesh gRPC server (with or without TLS), merged under `extra`.
 * grpc-js 1.14 reads these in build/src/server.js: `grpc.max_connection_idle_ms` (idle sessions
 * are closed), `grpc.keepalive_time_ms` / `grpc.keepalive_timeout_ms` (the server pings every
 * session and destroys one whose peer does not answer, e.g. a peer that vanished without a FIN).
 * It has no server-side ping enforcement and no cap on connections (docs/security.md).
 */
export function meshServerOptions(extra: grpc.ServerOptions = {}): grpc.ServerOptions {
  return {
    'grpc.max_connection_idle_ms': MESH_CONNECTION_IDLE_MS,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    ...extra,
  };
}

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

  constructor(private readonly files: TlsFiles, private readonly reloadMs: number, handshakeTimeoutMs: number) {
    const pair = readPair(files);
    // These are the TLS server's own settings (grpc-js passes them to http2.createSecureServer
    // with the pair); a reload replaces only the secure context (setSecureContext: key, cert,
    // CA), so every pair served is checked the same way.
    super({ requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeTimeoutMs }, pair);
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
 * Server credentials that require a client certificate from `files.ca`'s mesh at the handshake;
 * the files are re-read every `reloadMs` (default 30 s, 0: never) and new connections get the new
 * pair. A connection that has not completed its handshake `handshakeTimeoutMs` after it was
 * accepted is dropped.
 */
export function meshServerCredentials(files: TlsFiles, reloadMs = 30_000, handshakeTimeoutMs = MESH_HANDSHAKE_TIMEOUT_MS): grpc.ServerCredentials {
  if (!(Number.isInteger(handshakeTimeoutMs) && handshakeTimeoutMs > 0)) throw new Error(`TLS handshake timeout must be a positive number of milliseconds, not ${handshakeTimeoutMs}`);
  return new MeshServerCredentials(files, reloadMs, handshakeTimeoutMs);
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
 * With meshServerCredentials such a caller already failed the handshake; the check stays for any
 * other credentials a server may be given.
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
