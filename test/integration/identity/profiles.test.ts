import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { createVerifier } from '../../../src/identity/verifier.js';
import { AuthError, type IdentityConfig } from '../../../src/identity/types.js';
import type { ProfileName } from '../../../src/identity/profiles.js';

const AUD = 'http://127.0.0.1:10000/mcp';

/**
 * Enterprise IdP claim shapes (issue 17): each fixture is a token body as that provider issues it;
 * the test re-signs it with a test RS256 key (only iss, aud, iat and exp are replaced, to ours)
 * and reads it through the real verifier with the provider's profile.
 */
describe('identity profiles: Okta, Entra ID, Google Workspace, Keycloak tokens', () => {
  let dir: string;
  let issuer: DevIssuer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tollgate-profiles-'));
    issuer = await DevIssuer.start({ port: 0, stateDir: dir, alg: 'RS256' });
  });
  after(async () => {
    await issuer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function fixture(name: string): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(join('test/fixtures/identity', name), 'utf8')) as Record<string, unknown>;
  }

  async function read(file: string, profile: ProfileName | undefined, patch: Record<string, unknown> = {}) {
    const body = await fixture(file);
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.mint({ sub: String(body.sub), audience: AUD, ttlSec: 300, extra: { ...body, iss: issuer.url, aud: AUD, iat: now, exp: now + 300, ...patch } });
    const cfg: IdentityConfig = {
      issuer: issuer.url, audience: [AUD], algorithms: ['RS256'], clockToleranceSec: 5,
      claims: { team: 'team', groups: 'groups', agent: 'agent' }, ...(profile ? { profile } : {}),
    };
    return createVerifier(cfg).verify(token);
  }

  it('okta: groups, scp as an array, the client from cid', async () => {
    const id = await read('okta-access-token.json', 'okta');
    assert.equal(id.sub, 'alice@acme.example');
    assert.deepEqual(id.groups, ['Everyone', 'payments', 'payments-dba']);
    assert.deepEqual(id.scopes, ['openid', 'mcp:tools']);
    assert.equal(id.agent, '0oa8f3k2l9EXAMPLE5d7');
    assert.deepEqual(id.roles, []);
    assert.equal(id.tenant, null);
  });

  it('entra: group object IDs, app roles, scp space-delimited, tenant from tid, the client from azp', async () => {
    const id = await read('entra-access-token.json', 'entra');
    assert.deepEqual(id.groups, ['b3f4e4c1-5d6e-4f2a-9c1b-0a1b2c3d4e5f']);
    assert.deepEqual(id.roles, ['Invoices.Write', 'Tools.Admin']);
    assert.deepEqual(id.scopes, ['Tools.Call', 'Tools.Read']);
    assert.equal(id.tenant, '72f988bf-86f1-41af-91ab-2d7cd011db47');
    assert.equal(id.agent, '6e74172b-be56-4843-9ff4-e66a39bb12e3');
  });

  it('entra v1 tokens name the client appid instead of azp', async () => {
    const id = await read('entra-access-token.json', 'entra', { azp: undefined, appid: 'v1-client-id', ver: '1.0' });
    assert.equal(id.agent, 'v1-client-id');
  });

  it('google: the Workspace domain (hd) as tenant, the client from azp, no groups claim', async () => {
    const id = await read('google-id-token.json', 'google');
    assert.equal(id.tenant, 'acme.example');
    assert.equal(id.agent, '1234987819200-abc123def456.apps.googleusercontent.com');
    assert.deepEqual(id.groups, []);
  });

  it('keycloak: group paths, realm roles and this client\'s roles (not other clients\'), scope string', async () => {
    const id = await read('keycloak-access-token.json', 'keycloak');
    assert.deepEqual(id.groups, ['/payments', '/payments/dba']);
    assert.deepEqual(id.roles, ['offline_access', 'uma_authorization', 'payments-admin', 'tools-write']);
    assert.ok(!id.roles.includes('manage-account'), 'roles of another client must not leak in');
    assert.deepEqual(id.scopes, ['openid', 'profile', 'email']);
    assert.equal(id.agent, 'mcp-agent');
  });

  it('without the profile the same Keycloak token has no roles: the profile is what reads them', async () => {
    const id = await read('keycloak-access-token.json', undefined);
    assert.deepEqual(id.roles, []);
  });

  it('a claim of the wrong shape is refused, not misread (Keycloak realm roles as a string)', async () => {
    await assert.rejects(read('keycloak-access-token.json', 'keycloak', { realm_access: { roles: 'payments-admin' } }), (e: unknown) =>
      e instanceof AuthError && e.failure === 'invalid_claims' && /realm_access\.roles/.test(e.message));
  });

  it('an unknown profile is a start-up error', () => {
    assert.throws(() => createVerifier({ issuer: 'http://x', audience: [AUD], algorithms: ['RS256'], clockToleranceSec: 0, claims: { team: 't', groups: 'g', agent: 'a' }, profile: 'auth0' as ProfileName }), /profile "auth0" is not known/);
  });
});
