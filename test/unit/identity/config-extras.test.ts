import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../../src/authz/config.js';

describe('authz config: identity.profile and identity.introspection', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-idcfg-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const f = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(f, yaml);
    return loadConfigFile(f);
  };

  it('reads a known profile', () => {
    assert.equal(load('identity:\n  issuer: https://login.microsoftonline.com/t/v2.0\n  profile: entra\n').identity.profile, 'entra');
  });

  it('leaves the profile unset by default (generic)', () => {
    assert.equal(load('identity:\n  issuer: https://idp.example\n').identity.profile, undefined);
  });

  it('refuses an unknown profile, naming the field and the choices', () => {
    assert.throws(() => load('identity:\n  profile: auth0\n'), /\.yaml: identity\.profile: must be one of generic, okta, entra/);
  });

  it('reads identity.introspection with its defaults', () => {
    const c = load('identity:\n  introspection:\n    endpoint: https://idp.example/oauth2/introspect\n').identity.introspection;
    assert.deepEqual(c, { endpoint: 'https://idp.example/oauth2/introspect', cacheMaxEntries: 10_000, cacheTtlSec: 30, timeoutMs: 5000 });
  });

  it('client_id without client_secret_file is an error (the secret comes from a mounted file)', () => {
    assert.throws(() => load('identity:\n  introspection:\n    endpoint: https://idp.example/i\n    client_id: tollgate\n'), /client_id and client_secret_file go together/);
  });

  it('an inline client_secret is not a field', () => {
    assert.throws(() => load('identity:\n  introspection:\n    endpoint: https://idp.example/i\n    client_secret: s3cret\n'), /client_secret/);
  });
});

describe('token shape routing', () => {
  it('sends JWS-shaped tokens to the JWT verifier and everything else to introspection', async () => {
    const { looksLikeJwt } = await import('../../../src/identity/introspection.js');
    assert.equal(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'), true);
    assert.equal(looksLikeJwt('ory_at_abc.def'), false);
    assert.equal(looksLikeJwt('a..b'), false);
    assert.equal(looksLikeJwt('opaque-token'), false);
  });
});

describe('authz config: upstream_credentials', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-upcfg-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const f = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(f, yaml);
    return loadConfigFile(f);
  };

  it('reads the minting settings with their defaults', () => {
    assert.deepEqual(load('upstream_credentials:\n  key_file: /run/secrets/k.pem\n  issuer: tollgate\n  audience: https://up/mcp\n').upstreamCredentials,
      { keyFile: '/run/secrets/k.pem', alg: 'ES256', issuer: 'tollgate', audience: 'https://up/mcp', ttlSec: 300, renewBeforeSec: 60, cacheMaxEntries: 10_000 });
  });

  it('refuses it together with a static upstream_authorization', () => {
    assert.throws(() => load('upstream_authorization: Bearer x\nupstream_credentials:\n  key_file: k\n  issuer: t\n  audience: a\n'), /not both/);
  });

  it('refuses hours-long credentials and a renewal window longer than the lifetime', () => {
    assert.throws(() => load('upstream_credentials:\n  key_file: k\n  issuer: t\n  audience: a\n  ttl_sec: 86400\n'), /upstream_credentials\.ttl_sec/);
    assert.throws(() => load('upstream_credentials:\n  key_file: k\n  issuer: t\n  audience: a\n  ttl_sec: 60\n  renew_before_sec: 120\n'), /longer than renew_before_sec/);
  });
});
