import { strict as assert } from 'node:assert';
import { consentDecision, requestedResources } from '../../../src/identity/hydra/login-app.js';
import { hydraConfig } from '../../../src/identity/hydra/server.js';
import type { ConsentRequest } from '../../../src/identity/hydra/admin.js';

const MCP = 'http://127.0.0.1:10000/mcp';
const user = { username: 'alice', password: 'x', claims: { team: 'payments', groups: ['dev'] } };

function request(query: string, audience: string[] = []): ConsentRequest {
  return {
    challenge: 'c', skip: false, subject: 'alice', requested_scope: ['openid', 'offline_access'],
    requested_access_token_audience: audience, request_url: `http://127.0.0.1:4444/oauth2/auth?client_id=x&${query}`,
    client: { client_id: 'x' },
  };
}

describe('Hydra consent: RFC 8707 resource to token audience', () => {
  it('grants the requested resource as the access token audience, with the scopes and the user claims', () => {
    const d = consentDecision(request(`resource=${encodeURIComponent(MCP)}`), user, [MCP]);
    assert.deepEqual(d, { ok: true, scope: ['openid', 'offline_access'], audience: [MCP], claims: { team: 'payments', groups: ['dev'] } });
  });

  it('reads repeated resource parameters and the audience parameter together', () => {
    const other = 'http://127.0.0.1:10001/mcp';
    assert.deepEqual(requestedResources(request(`resource=${encodeURIComponent(MCP)}&resource=${encodeURIComponent(other)}`, [MCP])), [MCP, other]);
  });

  it('refuses a resource the server does not serve (invalid_target), naming it', () => {
    const d = consentDecision(request('resource=http%3A%2F%2Fevil.example%2Fmcp'), user, [MCP]);
    assert.equal(d.ok, false);
    assert.ok(!d.ok && d.error === 'invalid_target' && d.description.includes('http://evil.example/mcp'));
  });

  it('refuses a request with no resource at all rather than issuing an audience-less token', () => {
    const d = consentDecision(request('scope=openid'), user, [MCP]);
    assert.ok(!d.ok && d.error === 'invalid_target');
  });

  it('a garbled request_url is not a crash: only the audience parameter counts', () => {
    const r = { ...request(''), request_url: '::not a url', requested_access_token_audience: [MCP] };
    assert.deepEqual(requestedResources(r), [MCP]);
  });
});

describe('Hydra configuration', () => {
  it('requires PKCE, enables registration, advertises its endpoint and issues JWT access tokens', () => {
    const c = hydraConfig({ stateDir: '/x', loginUrl: 'http://l/login', consentUrl: 'http://l/consent' }, { public: 4444, admin: 4445 }, 's') as Record<string, Record<string, unknown>>;
    assert.deepEqual((c.oauth2 as { pkce: unknown }).pkce, { enforced: true });
    assert.equal((c.strategies as { access_token: string }).access_token, 'jwt');
    const oidc = c.oidc as { dynamic_client_registration: { enabled: boolean } };
    assert.equal(oidc.dynamic_client_registration.enabled, true);
    assert.equal((c.webfinger as { oidc_discovery: { client_registration_url: string } }).oidc_discovery.client_registration_url, 'http://127.0.0.1:4444/oauth2/register');
    assert.equal((c.urls as { self: { issuer: string } }).self.issuer, 'http://127.0.0.1:4444');
  });
});
