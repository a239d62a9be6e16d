import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HydraServer } from '../../../src/identity/hydra/server.js';
import { createVerifier } from '../../../src/identity/verifier.js';
import { AuthError, type AuthFailure, type IdentityConfig, type TokenVerifier } from '../../../src/identity/types.js';
import { freePort } from '../../../src/util/net.js';

const AUD = 'http://127.0.0.1:10000/mcp';
const OTHER = 'http://127.0.0.1:10001/mcp';

/** Issue 17: opaque access tokens checked by RFC 7662 introspection at a real Hydra, with a bounded cache. */
describe('opaque tokens via RFC 7662 introspection (Hydra)', function () {
  this.timeout(120_000);
  let state: string;
  let hydra: HydraServer;
  let client: { id: string; secret: string };
  let calls = 0;
  const counting = (url: string, init: RequestInit): Promise<Response> => { calls++; return fetch(url, init); };

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-introspect-'));
    hydra = await HydraServer.start({ stateDir: state, loginUrl: 'http://127.0.0.1:1/login', consentUrl: 'http://127.0.0.1:1/consent', accessTokenStrategy: 'opaque' });
    const res = await fetch(`${hydra.adminUrl}/admin/clients`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_secret: 'agent-secret-0123456789', grant_types: ['client_credentials'], audience: [AUD, OTHER], scope: 'mcp:tools', token_endpoint_auth_method: 'client_secret_basic' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    client = { id: ((await res.json()) as { client_id: string }).client_id, secret: 'agent-secret-0123456789' };
  });
  after(async () => {
    await hydra?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  async function token(audience: string): Promise<string> {
    const res = await fetch(`${hydra.issuer}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', audience, scope: 'mcp:tools' }).toString(),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { access_token: string }).access_token;
  }

  function verifier(ttlSec: number, endpoint = `${hydra.adminUrl}/admin/oauth2/introspect`): TokenVerifier {
    const cfg: IdentityConfig = {
      issuer: hydra.issuer, audience: [AUD], algorithms: ['RS256'], clockToleranceSec: 0,
      claims: { team: 'team', groups: 'groups', agent: 'agent' },
      introspection: { endpoint, cacheMaxEntries: 100, cacheTtlSec: ttlSec },
    };
    return createVerifier(cfg, { fetch: counting });
  }

  async function refusal(v: TokenVerifier, t: string): Promise<AuthFailure> {
    try {
      await v.verify(t);
    } catch (e) {
      if (e instanceof AuthError) return e.failure;
      throw e;
    }
    return assert.fail('accepted');
  }

  it('an opaque token is not a JWT, and introspection turns it into the identity', async () => {
    const t = await token(AUD);
    assert.equal(t.split('.').length === 3 && t.startsWith('ey'), false, 'Hydra issued an opaque token');
    const id = await verifier(30).verify(t);
    assert.equal(id.sub, client.id);
    assert.equal(id.agent, client.id);
    assert.deepEqual(id.aud, [AUD]);
    assert.deepEqual(id.scopes, ['mcp:tools']);
    assert.equal(id.iss, hydra.issuer);
  });

  it('answers are cached: the second check asks nobody', async () => {
    const v = verifier(30);
    const t = await token(AUD);
    calls = 0;
    await v.verify(t);
    await v.verify(t);
    await Promise.all([v.verify(t), v.verify(t)]);
    assert.equal(calls, 1);
  });

  it('revocation takes effect when the cached answer runs out (cache_ttl_sec bounds it)', async () => {
    const v = verifier(1);
    const t = await token(AUD);
    await v.verify(t);
    const res = await fetch(`${hydra.issuer}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
      body: new URLSearchParams({ token: t, token_type_hint: 'access_token' }).toString(),
    });
    assert.equal(res.status, 200);
    await v.verify(t); // still within the 1 s the answer may be reused
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(await refusal(v, t), 'inactive_token');
    assert.equal(await refusal(verifier(30), t), 'inactive_token', 'a fresh verifier refuses it at once');
  });

  it('a token for another resource is refused (wrong_audience)', async () => {
    assert.equal(await refusal(verifier(30), await token(OTHER)), 'wrong_audience');
  });

  it('a made-up opaque token is inactive', async () => {
    assert.equal(await refusal(verifier(30), 'ory_at_made-up-token-value'), 'inactive_token');
  });

  it('an unreachable introspection endpoint fails closed (issuer_unavailable)', async () => {
    assert.equal(await refusal(verifier(30, `http://127.0.0.1:${await freePort()}/introspect`), await token(AUD)), 'issuer_unavailable');
  });
});
