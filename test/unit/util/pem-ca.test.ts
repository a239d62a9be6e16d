import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, type PemPair } from '../../../src/pki/ca.js';
import { CaPemError, checkCaPem, pemCertificates, readCaFile } from '../../../src/util/pem-ca.js';
import { meshClientCredentials, meshServerCredentials } from '../../../src/pki/grpc.js';
import { kubeConfigFor } from '../../../src/k8s/kubeconfig.js';

/** Node's TLS reads an empty `ca` as none and trusts the system's roots: a CA given must hold a certificate. */
describe('CA files given to TLS (pem-ca)', () => {
  let ca: PemPair;
  let other: PemPair;
  let dir: string;
  before(async () => {
    ca = await createCa('pem-ca test CA');
    other = await createCa('pem-ca other CA');
  });
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-pem-ca-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads every certificate of a bundle, skipping keys and text between blocks', () => {
    const bundle = `# mesh CA\n${ca.certPem}\n${ca.keyPem}\n${other.certPem}`;
    const certs = pemCertificates(bundle);
    assert.equal(certs.length, 2);
    assert.match(certs[0]!.subject, /pem-ca test CA/);
    assert.match(certs[1]!.subject, /pem-ca other CA/);
    assert.equal(checkCaPem(bundle, 'bundle'), bundle);
    assert.equal(pemCertificates(Buffer.from(ca.certPem)).length, 1);
  });

  it('refuses an empty, blank or certificate-less CA, string or Buffer, naming it', () => {
    for (const pem of ['', '  \n\t', Buffer.alloc(0), Buffer.from('\n'), 'garbage', ca.keyPem]) {
      assert.throws(() => checkCaPem(pem, '--ca /x/ca.crt'), (e: unknown) => e instanceof CaPemError && /^--ca \/x\/ca\.crt holds no PEM certificate/.test(e.message), String(pem));
    }
    assert.throws(() => checkCaPem('', 'w'), /holds no PEM certificate \(it is empty\)/);
    assert.throws(() => checkCaPem(ca.keyPem, 'w'), /expected -----BEGIN CERTIFICATE-----/);
  });

  it('refuses a certificate block that does not parse', () => {
    const broken = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
    assert.throws(() => checkCaPem(`${ca.certPem}${broken}`, 'the CA'), /^CaPemError: the CA: certificate 2 does not parse/);
  });

  it('readCaFile: the text of a good file; an empty or missing one is an error naming it', () => {
    const good = join(dir, 'ca.crt');
    writeFileSync(good, ca.certPem);
    assert.equal(readCaFile(good), ca.certPem);
    const empty = join(dir, 'empty.crt');
    writeFileSync(empty, '');
    assert.throws(() => readCaFile(empty, `--ca ${empty}`), new RegExp(`^CaPemError: --ca ${empty} holds no PEM certificate`));
    assert.throws(() => readCaFile(join(dir, 'nope.crt'), '--apiserver-ca nope.crt'), /^CaPemError: --apiserver-ca nope\.crt: ENOENT/);
  });

  it('the other places a CA file reaches TLS refuse an empty one too (mesh gRPC, API server access)', () => {
    const empty = join(dir, 'empty.crt');
    writeFileSync(empty, '');
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    writeFileSync(cert, ca.certPem);
    writeFileSync(key, ca.keyPem);
    assert.throws(() => meshClientCredentials({ ca: empty, cert, key }), /TLS CA .*empty\.crt holds no PEM certificate/);
    assert.throws(() => meshServerCredentials({ ca: empty, cert, key }, 0), /TLS CA .*empty\.crt holds no PEM certificate/);
    assert.throws(() => kubeConfigFor({ server: 'https://127.0.0.1:6443', caFile: empty }), /--apiserver-ca .*empty\.crt holds no PEM certificate/);
  });
});
