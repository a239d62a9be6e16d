import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { LocalMesh } from '../../../src/mesh/local.js';
import { HydraServer } from '../../../src/identity/hydra/server.js';
import { LoginConsentApp } from '../../../src/identity/hydra/login-app.js';
import { freePort } from '../../../src/util/net.js';
import { rawPost } from '../../support/mcp-client.js';
import { TestBrowser, TestOAuthProvider } from '../../support/oauth-browser.js';

const OTHER_RESOURCE = 'http://127.0.0.1:1/other-mcp';

/**
 * Issue 17: the MCP authorization flow against a real authorization server (Ory Hydra) with the
 * MCP SDK's OAuth client: 401 → RFC 9728 → AS metadata → RFC 7591 registration → code + PKCE +
 * RFC 8707 resource → token → a governed call through Envoy and authz; refresh; revocation; a
 * token for another resource refused.
 */
describe('MCP login flow with Hydra, end to end', function () {
  this.timeout(180_000);
  let state: string;
  let hydra: HydraServer;
  let app: LoginConsentApp;
  let mesh: LocalMesh;
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-hydra-'));
    const publicPort = await freePort();
    const adminPort = await freePort();
    const envoyPort = await freePort();
    const resource = `http://127.0.0.1:${envoyPort}/mcp`;
    app = await LoginConsentApp.start({
      hydraAdminUrl: `http://127.0.0.1:${adminPort}`,
      users: [
        { username: 'alice', password: 'alice-pw', claims: { team: 'payments' } },
        { username: 'sam', password: 'sam-pw', claims: { team: 'support' } },
      ],
      resources: [resource, OTHER_RESOURCE],
    });
    hydra = await HydraServer.start({ stateDir: join(state, 'hydra'), publicPort, adminPort, loginUrl: app.loginUrl, consentUrl: app.consentUrl, echo: process.env.TOLLGATE_TEST_ECHO === '1' });
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: join(state, 'mesh'), authorizationServer: hydra.issuer,
      // This suite is about identity: a loaded test machine must not turn the first check into a 504.
      authzTimeoutMs: 5000,
      ports: { envoy: envoyPort, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    await hydra?.stop();
    await app?.close();
    rmSync(state, { recursive: true, force: true });
  });

  /** The SDK's flow: connect, get 401, authorize in the browser, finish with the code, connect again. */
  async function login(provider: TestOAuthProvider): Promise<Client> {
    const first = new Client({ name: 'agent', version: '1' });
    await assert.rejects(first.connect(new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: provider })), UnauthorizedError);
    const landed = provider.landed;
    assert.ok(landed, 'the SDK sent the user to the authorization server');
    const code = landed.searchParams.get('code');
    assert.ok(code, `no code: ${landed.searchParams.get('error')} ${landed.searchParams.get('error_description')}`);
    const transport = new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: provider });
    await transport.finishAuth(code);
    const client = new Client({ name: 'agent', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: provider }));
    clients.push(client);
    return client;
  }

  const alice = new TestOAuthProvider(new TestBrowser({ username: 'alice', password: 'alice-pw' }));

  it('registers dynamically, logs in with PKCE and a resource indicator, and makes a governed call', async () => {
    const c = await login(alice);
    assert.ok(alice.client?.client_id, 'RFC 7591 registration gave a client_id');
    const claims = decodeJwt(alice.saved!.access_token);
    assert.equal(claims.iss, hydra.issuer);
    assert.deepEqual(claims.aud, [mesh.endpoints.mcp], 'the resource indicator became the audience');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.team, 'payments');
    assert.equal(claims.client_id, alice.client!.client_id);
    const res = await c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    assert.match((res.content as Array<{ text: string }>)[0]!.text, /Refund policy/);
    assert.ok(mesh.demo!.calls.some((x) => x.tool === 'search_docs'));
  });

  it('decides by the identity Hydra vouched for: alice may not delete, sam may not run SQL', async () => {
    const c = clients[0]!;
    await assert.rejects(c.callTool({ name: 'delete_records', arguments: { table: 'invoices', where: 'true' } }), (e: unknown) => e instanceof McpError && e.code === -32003);
    const sam = await login(new TestOAuthProvider(new TestBrowser({ username: 'sam', password: 'sam-pw' })));
    await assert.rejects(sam.callTool({ name: 'run_sql', arguments: { query: 'select 1' } }), (e: unknown) => e instanceof McpError && e.code === -32003);
    const ok = await sam.callTool({ name: 'get_customer', arguments: { customer_id: 'cus_1001' } });
    assert.match((ok.content as Array<{ text: string }>)[0]!.text, /Ada Lovelace/);
  });

  it('refreshes: a new access token for the same resource, which the mesh accepts', async () => {
    const before = alice.saved!;
    assert.ok(before.refresh_token, 'offline_access gave a refresh token');
    assert.equal(await auth(alice, { serverUrl: mesh.endpoints.mcp }), 'AUTHORIZED');
    const after = alice.saved!;
    assert.notEqual(after.access_token, before.access_token);
    assert.notEqual(after.refresh_token, before.refresh_token, 'Hydra rotates refresh tokens');
    assert.deepEqual(decodeJwt(after.access_token).aud, [mesh.endpoints.mcp]);
    const r = await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }), { authorization: `Bearer ${after.access_token}` });
    assert.equal(r.status, 200, r.text);
  });

  it('revocation (RFC 7009): a revoked refresh token no longer refreshes', async () => {
    const token = alice.saved!.refresh_token!;
    const res = await fetch(`${hydra.issuer}/oauth2/revoke`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'refresh_token', client_id: alice.client!.client_id }).toString(),
    });
    assert.equal(res.status, 200, await res.text());
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: alice.client!.client_id });
    const again = await fetch(`${hydra.issuer}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_grant');
  });

  it('a token for another resource is refused by the mesh (wrong audience), and the server never sees it', async () => {
    const other = new TestOAuthProvider(new TestBrowser({ username: 'alice', password: 'alice-pw' }), OTHER_RESOURCE);
    const c = new Client({ name: 'agent', version: '1' });
    await assert.rejects(c.connect(new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: other })), UnauthorizedError);
    const code = other.landed?.searchParams.get('code');
    assert.ok(code);
    await auth(other, { serverUrl: mesh.endpoints.mcp, authorizationCode: code });
    assert.deepEqual(decodeJwt(other.saved!.access_token).aud, [OTHER_RESOURCE]);
    const seen = mesh.demo!.requests.length;
    const r = await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }), { authorization: `Bearer ${other.saved!.access_token}` });
    assert.equal(r.status, 401);
    assert.equal((r.json as { error: { data: { auth_failure: string } } }).error.data.auth_failure, 'wrong_audience');
    assert.equal(mesh.demo!.requests.length, seen);
  });

  it('a resource the authorization server does not serve gets no token at all (invalid_target)', async () => {
    const stranger = new TestOAuthProvider(new TestBrowser({ username: 'alice', password: 'alice-pw' }), 'http://127.0.0.1:1/nobody');
    const c = new Client({ name: 'agent', version: '1' });
    await assert.rejects(c.connect(new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: stranger })), UnauthorizedError);
    assert.equal(stranger.landed?.searchParams.get('code'), null);
    assert.equal(stranger.landed?.searchParams.get('error'), 'invalid_target');
  });

  it('a wrong password gets the form again, not a code', async () => {
    const mallory = new TestOAuthProvider(new TestBrowser({ username: 'alice', password: 'guess' }));
    const c = new Client({ name: 'agent', version: '1' });
    await assert.rejects(c.connect(new StreamableHTTPClientTransport(new URL(mesh.endpoints.mcp), { authProvider: mallory })), /HTTP 401/);
  });
});
