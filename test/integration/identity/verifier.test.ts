import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, decodeJwt, generateKeyPair, SignJWT } from 'jose';
import { DevIssuer, mintDevToken } from '../../../src/identity/issuer.js';
import { loadKeyRing, signingKey } from '../../../src/identity/keystore.js';
import { createVerifier, type VerifierOptions } from '../../../src/identity/verifier.js';
import { AuthError, type AuthFailure, type IdentityConfig, type TokenVerifier } from '../../../src/identity/types.js';
import { freePort } from '../../../src/util/net.js';

const AUD = 'http://127.0.0.1:10000/mcp';

async function refusal(v: TokenVerifier, token: string): Promise<AuthFailure> {
  try {
    const id = await v.verify(token);
    assert.fail(`token accepted as ${JSON.stringify(id.sub)}`);
  } catch (e) {
    if (!(e instanceof AuthError)) throw e;
    return e.failure;
  }
}

function segments(token: string): [string, string, string] {
  const [h, p, s] = token.split('.');
  return [h as string, p as string, s as string];
}

function encodeJson(v: unknown): string {
  return base64url.encode(JSON.stringify(v));
}

describe('token verifier against a real dev issuer', function () {
  let dir: string;
  let issuer: DevIssuer;
  let cfg: IdentityConfig;
  const verifier = (patch: Partial<IdentityConfig> = {}, opts: VerifierOptions = {}): TokenVerifier => createVerifier({ ...cfg, ...patch }, opts);
  const mint = (extra: Partial<Parameters<DevIssuer['mint']>[0]> = {}): Promise<string> =>
    issuer.mint({ sub: 'alice', team: 'payments', agent: 'claude', audience: AUD, ttlSec: 300, ...extra });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-verifier-'));
    issuer = await DevIssuer.start({ port: 0, stateDir: dir });
    cfg = {
      issuer: issuer.url, audience: [AUD], algorithms: ['ES256', 'RS256', 'EdDSA'], clockToleranceSec: 30,
      claims: { team: 'team', groups: 'groups', agent: 'agent' },
    };
  });

  afterEach(async () => {
    await issuer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('turns a valid token into an Identity', async () => {
    const token = await mint({ groups: ['eng'], scopes: ['tools:read'], act: ['agent-x', 'orchestrator'] });
    const id = await verifier().verify(token);
    assert.equal(id.sub, 'alice');
    assert.equal(id.iss, issuer.url);
    assert.deepEqual(id.aud, [AUD]);
    assert.equal(id.team, 'payments');
    assert.equal(id.agent, 'claude');
    assert.deepEqual(id.groups, ['eng']);
    assert.deepEqual(id.scopes, ['tools:read']);
    assert.deepEqual(id.delegation, [{ sub: 'agent-x' }, { sub: 'orchestrator' }]);
    assert.equal(id.expiresAt, decodeJwt(token).exp);
    assert.equal(id.claims.jti, decodeJwt(token).jti);
    assert.ok(Object.isFrozen(id) && Object.isFrozen(id.claims), 'identities are shared through the cache, so frozen');
  });

  it('accepts any one of several configured audiences', async () => {
    const token = await mint({ audience: ['http://elsewhere/api', AUD] });
    assert.equal((await verifier({ audience: ['http://other/mcp', AUD] }).verify(token)).sub, 'alice');
  });

  it('refuses a missing token as missing_token', async () => {
    assert.equal(await refusal(verifier(), ''), 'missing_token');
  });

  it('refuses malformed tokens as malformed_token', async () => {
    const v = verifier();
    const [h, p, s] = segments(await mint());
    for (const t of ['abc', 'a.b.c', `${h}.${p}`, `${h}.${p}.${s}.x.y`, `${h}.!!!.${s}`, `${encodeJson('x')}.${p}.${s}`, `${h}.${base64url.encode('not json')}.${s}`, 'x'.repeat(20_000)]) {
      assert.equal(await refusal(v, t), 'malformed_token', t.slice(0, 40));
    }
  });

  it('refuses an expired token as expired, allowing the configured clock skew', async () => {
    const v = verifier();
    assert.equal(await refusal(v, await mint({ ttlSec: -120 })), 'expired');
    assert.equal((await v.verify(await mint({ ttlSec: -10 }))).sub, 'alice');
    assert.equal(await refusal(verifier({ clockToleranceSec: 0 }), await mint({ ttlSec: -10 })), 'expired');
  });

  it('refuses a token used before its nbf as not_yet_valid', async () => {
    const nbf = Math.floor(Date.now() / 1000) + 600;
    assert.equal(await refusal(verifier(), await mint({ extra: { nbf } })), 'not_yet_valid');
  });

  it('refuses a token from another issuer as wrong_issuer', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'tollgate-other-'));
    const other = await DevIssuer.start({ port: 0, stateDir: otherDir });
    try {
      const v = verifier();
      assert.equal(await refusal(v, await other.mint({ sub: 'mallory', audience: AUD, ttlSec: 300 })), 'wrong_issuer');
      assert.equal(await refusal(v, await mint({ extra: { iss: undefined } })), 'wrong_issuer');
      // Claiming to be our issuer does not help: its key is not ours.
      assert.equal(await refusal(v, await other.mint({ sub: 'mallory', audience: AUD, ttlSec: 300, extra: { iss: issuer.url } })), 'unknown_key');
    } finally {
      await other.close();
      await rm(otherDir, { recursive: true, force: true });
    }
  });

  it('refuses a token for another audience as wrong_audience', async () => {
    const v = verifier();
    assert.equal(await refusal(v, await mint({ audience: 'http://127.0.0.1:10001/mcp' })), 'wrong_audience');
    assert.equal(await refusal(v, await mint({ extra: { aud: undefined } })), 'wrong_audience');
  });

  it('refuses forged signatures as bad_signature', async () => {
    const v = verifier();
    const [h, p, s] = segments(await mint());
    const claims = decodeJwt(`${h}.${p}.${s}`);
    const altered = `${h}.${encodeJson({ ...claims, team: 'admins' })}.${s}`;
    assert.equal(await refusal(v, altered), 'bad_signature');

    const { privateKey } = await generateKeyPair('ES256');
    const sameKid = await new SignJWT({ ...claims, team: 'admins' }).setProtectedHeader({ alg: 'ES256', kid: issuer.kid }).sign(privateKey);
    assert.equal(await refusal(v, sameKid), 'bad_signature');

    const flipped = s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`;
    assert.equal(await refusal(v, `${h}.${p}.${flipped}`), 'bad_signature');
  });

  it('never accepts alg "none"', async () => {
    const v = verifier();
    const [, p] = segments(await mint());
    for (const alg of ['none', 'None', 'NONE']) {
      for (const sig of ['', 'AAAA']) {
        assert.equal(await refusal(v, `${encodeJson({ alg, typ: 'JWT' })}.${p}.${sig}`), 'algorithm_not_allowed', `${alg} ${sig}`);
      }
    }
  });

  it('refuses algorithms outside the allow-list as algorithm_not_allowed', async () => {
    const claims = decodeJwt(await mint());
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: issuer.kid }).sign(new TextEncoder().encode('x'.repeat(32)));
    assert.equal(await refusal(verifier(), hs), 'algorithm_not_allowed');
    // An ES256 token where only RS256 is accepted.
    assert.equal(await refusal(verifier({ algorithms: ['RS256'] }), await mint()), 'algorithm_not_allowed');
  });

  it('refuses wrongly typed or missing claims as invalid_claims', async () => {
    const v = verifier();
    assert.equal(await refusal(v, await mint({ extra: { team: 42 } })), 'invalid_claims');
    assert.equal(await refusal(v, await mint({ extra: { exp: undefined } })), 'invalid_claims');
    assert.equal(await refusal(v, await mint({ extra: { sub: undefined } })), 'invalid_claims');
    assert.equal(await refusal(v, await mint({ extra: { act: 'root' } })), 'invalid_claims');
  });

  it('picks up a rotated key by refetching the JWKS on an unknown kid', async () => {
    const v = verifier({ jwksCooldownSec: 0 });
    const before = await mint();
    await v.verify(before);
    const oldKid = issuer.kid;
    const newKid = await issuer.rotate();
    assert.notEqual(newKid, oldKid);
    const after = await mint();
    assert.equal((await v.verify(after)).sub, 'alice');
    assert.equal((await createVerifier(cfg, { cacheSize: 0 }).verify(before)).sub, 'alice', 'tokens signed by the old key still verify');
  });

  it('does not refetch the JWKS within the cooldown: an unknown kid is unknown_key', async () => {
    const v = verifier({ jwksCooldownSec: 3600 });
    await v.verify(await mint());
    await issuer.rotate();
    assert.equal(await refusal(v, await mint()), 'unknown_key');
  });

  it('verifies RS256 and EdDSA keys too', async () => {
    for (const alg of ['RS256', 'EdDSA'] as const) {
      await issuer.rotate(alg);
      const token = await mint();
      assert.equal(JSON.parse(new TextDecoder().decode(base64url.decode(segments(token)[0]))).alg, alg);
      assert.equal((await verifier({ jwksCooldownSec: 0 }).verify(token)).sub, 'alice');
    }
  });

  it('tries each key when a token has no kid and several keys could match', async () => {
    await issuer.rotate('ES256');
    const ring = await loadKeyRing(dir);
    const oldKey = ring!.keys[0]!;
    const claims = decodeJwt(await mint());
    const noKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(await signingKey(oldKey));
    assert.equal((await verifier().verify(noKid)).sub, 'alice');
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    assert.equal(await refusal(verifier(), forged), 'bad_signature');
  });

  it('accepts tokens minted offline from the same state dir', async () => {
    const token = await mintDevToken(dir, issuer.url, { sub: 'bob', audience: AUD, ttlSec: 60 });
    assert.equal((await verifier().verify(token)).sub, 'bob');
  });

  it('reports an unreachable issuer as issuer_unavailable, and recovers after the backoff', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let clock = Date.now();
    const v = createVerifier({ ...cfg, issuer: url }, { now: () => clock, retryBackoff: { initialMs: 5000, maxMs: 60_000 } });
    const token = await mintDevToken(dir, url, { sub: 'carol', audience: AUD, ttlSec: 300 });
    assert.equal(await refusal(v, token), 'issuer_unavailable');

    const late = await DevIssuer.start({ port, stateDir: dir });
    try {
      await assert.rejects(v.verify(token), (e: AuthError) => e.failure === 'issuer_unavailable' && /next attempt in/.test(e.message), 'within the backoff');
      clock += 5001;
      assert.equal((await v.verify(token)).sub, 'carol');
    } finally {
      await late.close();
    }
  });

  it('reports an unreachable JWKS as issuer_unavailable', async () => {
    const v = verifier({ jwksUri: `http://127.0.0.1:${await freePort()}/jwks` });
    assert.equal(await refusal(v, await mint()), 'issuer_unavailable');
  });

  it('refuses a discovery document naming another issuer', async () => {
    const port = await freePort();
    const liar = await DevIssuer.start({ port, stateDir: dir, issuer: 'https://idp.example' });
    try {
      const url = `http://127.0.0.1:${port}`;
      const token = await mintDevToken(dir, url, { sub: 'alice', audience: AUD, ttlSec: 60 });
      await assert.rejects(createVerifier({ ...cfg, issuer: url }).verify(token), (e: AuthError) => e.failure === 'issuer_unavailable' && /must match/.test(e.message));
    } finally {
      await liar.close();
    }
  });

  it('caches a verified token until its exp, and no longer', async () => {
    let clock = Date.now();
    const v = verifier({}, { now: () => clock });
    const token = await mint({ ttlSec: 120 });
    const first = await v.verify(token);
    await issuer.close();
    // The very same object: answered from the cache, not verified again.
    assert.equal(await v.verify(token), first);
    const [a, b] = await Promise.all([v.verify(token), v.verify(token)]);
    assert.ok(a === first && b === first);
    clock = first.expiresAt * 1000 + 31_000;
    assert.equal(await refusal(v, token), 'expired');
    issuer = await DevIssuer.start({ port: 0, stateDir: dir });
  });

  it('shares one verification among concurrent requests for a new token', async () => {
    const v = verifier();
    const token = await mint();
    const ids = await Promise.all([1, 2, 3, 4, 5].map(() => v.verify(token)));
    assert.ok(ids.every((id) => id === ids[0]));
  });
});
