import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createCa, issueCertificate, issueForCsr, type LeafRequest, type PemPair } from './ca.js';

/**
 * The certificate authority `tollgate up` keeps in its state directory: made once, then every
 * component of the local mesh gets a certificate from it. In a cluster the same roles are played by
 * certificates bound to service accounts; the files here have the same shape either way.
 */

export interface CertFiles {
  /** PEM certificate of the workload. */
  cert: string;
  /** PEM PKCS#8 private key (mode 0600). */
  key: string;
  /** PEM CA certificate that peers are checked against. */
  ca: string;
}

// Renew well before expiry so a long-running `up` never hands out a certificate about to lapse.
const RENEW_BEFORE_MS = 7 * 86_400_000;

export class LocalPki {
  private constructor(readonly dir: string, private readonly ca: PemPair) {}

  get caFile(): string { return join(this.dir, 'ca.crt'); }
  get caPem(): string { return this.ca.certPem; }

  /** Opens the CA under `dir`, creating it on first use. */
  static async open(dir: string, trustDomain = 'tollgate.local'): Promise<LocalPki> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const certFile = join(dir, 'ca.crt');
    const keyFile = join(dir, 'ca.key');
    let ca: PemPair;
    if (existsSync(certFile) && existsSync(keyFile)) {
      ca = { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
    } else {
      ca = await createCa(`Tollgate local CA (${trustDomain})`);
      writeFileSync(keyFile, ca.keyPem, { mode: 0o600 });
      writeFileSync(certFile, ca.certPem, { mode: 0o644 });
    }
    return new LocalPki(dir, ca);
  }

  /**
   * Certificate files for `name` (a file-name-safe label such as "xds-server"), reissued when
   * missing, near expiry, or issued for other names than asked.
   */
  async issue(name: string, req: LeafRequest): Promise<CertFiles> {
    if (!/^[a-z0-9][a-z0-9._-]{0,100}$/.test(name)) throw new Error(`certificate name ${JSON.stringify(name)}: use lowercase letters, digits, '.', '_' and '-'`);
    const cert = join(this.dir, `${name}.crt`);
    const key = join(this.dir, `${name}.key`);
    if (!this.current(cert, key, req)) {
      const pair = await issueCertificate(this.ca, req);
      writeFileSync(key, pair.keyPem, { mode: 0o600 });
      writeFileSync(cert, pair.certPem, { mode: 0o644 });
    }
    return { cert, key, ca: this.caFile };
  }

  /** A certificate (PEM) for the key of a PKCS#10 request, with the names in `req` only. */
  signCsr(csrPem: string, req: LeafRequest): Promise<string> {
    return issueForCsr(this.ca, csrPem, req);
  }

  private current(certFile: string, keyFile: string, req: LeafRequest): boolean {
    if (!existsSync(certFile) || !existsSync(keyFile)) return false;
    try {
      const c = new X509Certificate(readFileSync(certFile));
      if (!c.checkIssued(new X509Certificate(this.ca.certPem))) return false;
      if (Date.parse(c.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
      const alt = c.subjectAltName ?? '';
      return [...(req.uris ?? []), ...(req.dnsNames ?? []), ...(req.ips ?? [])].every((n) => alt.includes(n));
    } catch {
      return false;
    }
  }
}
