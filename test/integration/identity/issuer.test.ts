import { strict as assert } from 'node:assert';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { keyFile } from '../../../src/identity/keystore.js';
import { createVerifier } from '../../../src/identity/verifier.js';
import type { IdentityConfig } from '../../../src/identity/types.js';

const AUD = 'http://127.0.0.1:10000/mcp';

function config(issuer: string): IdentityConfig {
  return { issuer, audience: [AUD], algorithms: ['ES256', 'RS256', 'EdDSA'], clockToleranceSec: 0, claims: { team: 'team', groups: 'groups', agent: 'agent' } };
}

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('dev OIDC issuer', () => {
  let dir: string;
  const started: DevIssuer[] = [];
  const start = async (opts: Partial<Parameters<typeof DevIssuer.start>[0]> = {}): Promise<DevIssuer> => {
    const i = await DevIssuer.start({ port: 0, stateDir: dir, ...opts });
    started.push(i);
    return i;
  };

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'tollgate-issuer-')); });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((i) => i.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('serves OIDC discovery and a JWKS of public keys', async () => {
    const issuer = await start();
    assert.match(issuer.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const { status, body } = await getJson(`${issuer.url}/.well-known/openid-configuration`);
    assert.equal(status, 200);
    assert.equal(body.issuer, issuer.url);
    assert.equal(body.jwks_uri, `${issuer.url}/jwks`);
    assert.deepEqual(body.id_token_signing_alg_values_supported, ['ES256']);
    const meta = await getJson(`${issuer.url}/.well-known/oauth-authorization-server`);
    assert.equal(meta.body.issuer, issuer.url);
    const jwks = await getJson(`${issuer.url}/jwks`);
    const keys = jwks.body.keys as Array<Record<string, unknown>>;
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.kid, issuer.kid);
    assert.equal(keys[0]?.use, 'sig');
    assert.equal('d' in (keys[0] ?? {}), false, 'no private key material');
  });

  it('answers other paths with 404 and other methods with 405', async () => {
    const issuer = await start();
    assert.equal((await fetch(`${issuer.url}/nope`)).status, 404);
    const getToken = await fetch(`${issuer.url}/token`);
    assert.equal(getToken.status, 405, 'the token endpoint takes POST only');
    assert.equal(getToken.headers.get('allow'), 'POST');
    const post = await fetch(`${issuer.url}/jwks`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(`${issuer.url}/jwks`, { method: 'HEAD' });
    assert.equal(head.status, 200);
  });

  it('answers an unparseable request target with 400 and keeps serving', async () => {
    const issuer = await start();
    const { port } = new URL(issuer.url);
    const reply = await new Promise<string>((resolve, reject) => {
      let data = '';
      const s = connect({ host: '127.0.0.1', port: Number(port) }, () => s.end('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', (c: Buffer) => { data += c.toString(); });
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    assert.equal((await fetch(`${issuer.url}/jwks`)).status, 200);
  });

  it('keeps its keys under stateDir/issuer with mode 0600 and serves them again after a restart', async () => {
    const first = await start();
    const port = Number(new URL(first.url).port);
    const token = await first.mint({ sub: 'alice', audience: AUD, ttlSec: 300 });
    const kid = first.kid;
    assert.equal(first.keyFile, keyFile(dir));
    assert.equal((await stat(keyFile(dir))).mode & 0o777, 0o600);
    await first.close();
    started.splice(0);

    const again = await start({ port });
    assert.equal(again.url, first.url);
    assert.equal(again.kid, kid);
    assert.equal((await createVerifier(config(again.url)).verify(token)).sub, 'alice');
  });

  it('publishes old and new keys after rotate(), signing with the new one', async () => {
    const issuer = await start();
    const oldKid = issuer.kid;
    const newKid = await issuer.rotate('RS256');
    assert.equal(issuer.kid, newKid);
    const { body } = await getJson(`${issuer.url}/jwks`);
    assert.deepEqual((body.keys as Array<{ kid: string }>).map((k) => k.kid), [oldKid, newKid]);
    const doc = await getJson(`${issuer.url}/.well-known/openid-configuration`);
    assert.deepEqual(doc.body.id_token_signing_alg_values_supported, ['ES256', 'RS256']);
  });

  it('creates keys of the requested algorithm', async () => {
    const issuer = await start({ alg: 'EdDSA' });
    const { body } = await getJson(`${issuer.url}/jwks`);
    assert.deepEqual((body.keys as Array<{ kty: string; crv: string; alg: string }>).map((k) => [k.kty, k.crv, k.alg]), [['OKP', 'Ed25519', 'EdDSA']]);
    const token = await issuer.mint({ sub: 'alice', audience: AUD, ttlSec: 60 });
    assert.equal((await createVerifier(config(issuer.url)).verify(token)).sub, 'alice');
  });

  it('serves discovery under the path of an issuer URL that has one', async () => {
    const probe = await start();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    started.splice(0);
    const issuer = await start({ port, issuer: `http://127.0.0.1:${port}/realms/dev` });
    const { body } = await getJson(`${issuer.url}/.well-known/openid-configuration`);
    assert.equal(body.jwks_uri, `http://127.0.0.1:${port}/realms/dev/jwks`);
    const token = await issuer.mint({ sub: 'alice', audience: AUD, ttlSec: 60 });
    assert.equal((await createVerifier(config(issuer.url)).verify(token)).iss, issuer.url);
  });

  it('fails to start, with the reason, when the port is taken', async () => {
    const first = await start();
    await assert.rejects(DevIssuer.start({ port: Number(new URL(first.url).port), stateDir: dir }), /EADDRINUSE/);
  });
});
