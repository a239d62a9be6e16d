import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * A CA that a user names (a --ca flag, a ca_file setting, a mounted ca.crt) must be a CA. Node's
 * TLS reads an empty `ca` ('' or an empty Buffer) as no `ca` at all and then trusts the system's
 * root CAs: an empty or truncated CA file would quietly widen trust to every public CA, and a
 * bearer token or client credential would go to whoever holds any publicly trusted certificate.
 * Every place that hands a user-supplied CA to TLS checks it here first.
 */

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export class CaPemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaPemError';
  }
}

/**
 * The certificates of a PEM text, in order. Throws when a CERTIFICATE block does not parse;
 * other blocks (keys, parameters) and text between blocks are skipped, as OpenSSL skips them.
 */
export function pemCertificates(pem: string | Buffer): X509Certificate[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const out: X509Certificate[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== 'CERTIFICATE') continue;
    try {
      out.push(new X509Certificate(m[0]));
    } catch (e) {
      throw new CaPemError(`certificate ${out.length + 1} does not parse (${(e as Error).message})`);
    }
  }
  return out;
}

/**
 * `pem` itself when it holds at least one PEM certificate, all of which parse; otherwise a
 * CaPemError "`what` holds no PEM certificate" (what: e.g. `--ca /etc/mesh/ca.crt`).
 */
export function checkCaPem<T extends string | Buffer>(pem: T, what: string): T {
  let certs: X509Certificate[];
  try {
    certs = pemCertificates(pem);
  } catch (e) {
    throw new CaPemError(`${what}: ${(e as Error).message}`);
  }
  if (certs.length === 0) {
    const empty = (typeof pem === 'string' ? pem : pem.toString('utf8')).trim() === '';
    throw new CaPemError(`${what} holds no PEM certificate${empty ? ' (it is empty)' : ' (expected -----BEGIN CERTIFICATE-----)'}`);
  }
  return pem;
}

/** A CA file's text, checked with checkCaPem; `what` names it in errors (default: the path). */
export function readCaFile(file: string, what: string = file): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CaPemError(`${what}: ${(e as Error).message}`);
  }
  return checkCaPem(text, what);
}
