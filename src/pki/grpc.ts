import { readFileSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { uriSans } from './ca.js';
import { parseSpiffeId, type WorkloadIdentity } from './identity.js';
import type { CertFiles } from './local.js';

/**
 * mTLS for the mesh's gRPC servers (xDS, authz). The handshake asks every client for a certificate
 * and Node's TLS checks it against the mesh CA, but an unverified client is not dropped at the
 * handshake: it reaches the handler, which refuses it with a gRPC status that says why. A refusal
 * the client can read (and the server can log and count) beats a reset nobody can diagnose; the
 * chain check itself stays OpenSSL's, never ours.
 */

/** A workload's certificate, key and the mesh CA its peers are checked against. */
export type TlsFiles = CertFiles;

class MeshServerCredentials extends grpc.ServerCredentials {
  constructor(files: TlsFiles) {
    const read = (what: string, f: string): Buffer => {
      try { return readFileSync(f); } catch (e) { throw new Error(`TLS ${what} ${f}: ${(e as Error).message}`); }
    };
    // requestCert + rejectUnauthorized:false: OpenSSL verifies, the handler decides (see above).
    super({ requestCert: true, rejectUnauthorized: false }, { cert: read('certificate', files.cert), key: read('key', files.key), ca: read('CA', files.ca) });
  }

  _equals(other: grpc.ServerCredentials): boolean { return other === this; }
}

/** Server credentials that request a client certificate from `files.ca`'s mesh. */
export function meshServerCredentials(files: TlsFiles): grpc.ServerCredentials {
  return new MeshServerCredentials(files);
}

/** Client credentials for a mesh workload: its certificate, and the mesh CA to check the server. */
export function meshClientCredentials(files: TlsFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(readFileSync(files.ca), readFileSync(files.key), readFileSync(files.cert));
}

export type PeerCheck =
  | { ok: true; spiffeId: string; identity: WorkloadIdentity }
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
  return { ok: true, spiffeId: spiffe[0]!, identity: id };
}
