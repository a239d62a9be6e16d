import { webcrypto, createPrivateKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * A small certificate authority for the mesh's own channels (xDS, authz gRPC, NATS): ECDSA P-256
 * keys, a self-signed CA and leaf certificates with SPIFFE URI, DNS and IP SANs. @peculiar/x509
 * builds the DER (X.509 encoding by hand would be a maintenance liability); keys come from WebCrypto.
 */

// Reading SANs needs none of this library: san.ts, which the gRPC handshake path imports alone.
export { uriSans, parseSubjectAltName } from './san.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

export type CertUsage = 'server' | 'client' | 'both';

export interface LeafRequest {
  commonName: string;
  /** URI SANs, e.g. a SPIFFE ID. */
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  usage: CertUsage;
  /** Lifetime; default 30 days. */
  days?: number;
}

function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return Buffer.from(b).toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  // Back-dated a little so peers with a slightly slow clock accept a fresh certificate; the
  // lifetime counts from now, so a certificate of a few seconds (renewal tests) is valid at all.
  const now = Date.now();
  return { notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + days * 86_400_000) };
}

function escapeDn(s: string): string {
  return s.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
}

export async function createCa(commonName: string, days = 3650): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(commonName)}`,
    ...validity(days),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys.privateKey) };
}

async function importCaKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

export async function issueCertificate(ca: PemPair, req: LeafRequest): Promise<PemPair> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  return { certPem: await signLeaf(ca, keys.publicKey, req), keyPem: await keyPem(keys.privateKey) };
}

/** A key pair and a PKCS#10 request for it (the workload side of the certificate flow). */
export async function createCsr(commonName: string): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${escapeDn(commonName)}`, keys, signingAlgorithm: ALG });
  return { csrPem: csr.toString('pem') + '\n', keyPem: await keyPem(keys.privateKey) };
}

/**
 * Signs a certificate for the key in a PKCS#10 request. Only the key is taken from the request
 * (after its self-signature is checked): names and usage come from `req`, decided by the caller
 * from what it verified, never from what the requester asked for.
 */
export async function issueForCsr(ca: PemPair, csrPem: string, req: LeafRequest): Promise<string> {
  let csr: x509.Pkcs10CertificateRequest;
  try { csr = new x509.Pkcs10CertificateRequest(csrPem); } catch (e) { throw new Error(`not a PKCS#10 certificate request: ${(e as Error).message}`); }
  if (!(await csr.verify())) throw new Error('the certificate request is not signed by its own key');
  return signLeaf(ca, await csr.publicKey.export(), req);
}

async function signLeaf(ca: PemPair, publicKey: CryptoKey, req: LeafRequest): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const sans: x509.JsonGeneralName[] = [
    ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const eku = req.usage === 'server' ? [x509.ExtendedKeyUsage.serverAuth]
    : req.usage === 'client' ? [x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(req.commonName)}`,
    issuer: caCert.subject,
    ...validity(req.days ?? 30),
    publicKey,
    signingKey: await importCaKey(ca.keyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension(eku, false),
      ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans, false)] : []),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return cert.toString('pem') + '\n';
}

