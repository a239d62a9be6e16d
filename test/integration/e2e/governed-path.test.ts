import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SignJWT, generateKeyPair } from 'jose';
import { LocalMesh } from '../../../src/mesh/local.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';

type ErrBody = { jsonrpc: string; id: unknown; error: { code: number; message: string; data: { decision_id: string; reasons: string[] } } };

/**
 * Issue 2, end to end: MCP SDK client -> real Envoy -> ext_authz -> tollgate authz (own process,
 * Rego built by opa to WASM, JWT from our OIDC issuer) -> the demo MCP server on the SDK.
 */
describe('governed MCP path, end to end', function () {
  this.timeout(120_000);
  let mesh: LocalMesh;
  let state: string;
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-e2e-'));
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  async function client(claims: { sub: string; team?: string; groups?: string[] }): Promise<Client> {
    const c = await connectClient(mesh.endpoints.mcp, await mesh.token(claims));
    clients.push(c);
    return c;
  }

  const callsOf = (tool: string) => mesh.demo!.calls.filter((c) => c.tool === tool).length;

  it('lets an allowed call through and returns the server result', async () => {
    const c = await client({ sub: 'alice', team: 'payments' });
    const tools = await c.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'search_docs'));
    const res = await c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    const text = (res.content as Array<{ text: string }>)[0]!.text;
    assert.match(text, /Refund policy/);
    assert.equal(callsOf('search_docs'), 1);
  });

  it('strips the caller token before the MCP server (no token passthrough) and tags the decision', async () => {
    assert.ok(mesh.demo!.requests.length > 0);
    for (const r of mesh.demo!.requests) {
      assert.equal(r.authorization, null, 'the MCP server must never see the caller token');
      assert.match(r.decisionId ?? '', /^[0-9a-f-]{36}$/);
    }
  });

  it('denies a destructive call with the policy reasons and a decision id; the server never sees it', async () => {
    const c = await client({ sub: 'alice', team: 'payments' });
    const before = callsOf('delete_records');
    await assert.rejects(c.callTool({ name: 'delete_records', arguments: { table: 'invoices', where: 'true' } }), (e: unknown) => {
      assert.ok(e instanceof McpError, `expected McpError, got ${String(e)}`);
      assert.equal(e.code, -32003);
      assert.match(e.message, /Tollgate denied this call: .*destructive/i);
      const data = e.data as { decision_id: string; reasons: string[] };
      assert.match(data.decision_id, /^[0-9a-f-]{36}$/);
      assert.ok(data.reasons.length > 0);
      return true;
    });
    assert.equal(callsOf('delete_records'), before);
  });

  it('decides by verified identity: the same call is allowed for one team and denied for another', async () => {
    const dba = await client({ sub: 'dora', team: 'payments', groups: ['dba'] });
    await dba.callTool({ name: 'delete_records', arguments: { table: 'sessions', where: "expired_at < now()" } });
    assert.equal(callsOf('delete_records'), 1);

    const support = await client({ sub: 'sam', team: 'support' });
    const ok = await support.callTool({ name: 'get_customer', arguments: { customer_id: 'cus_1001' } });
    assert.match((ok.content as Array<{ text: string }>)[0]!.text, /Ada Lovelace/);
    await assert.rejects(support.callTool({ name: 'run_sql', arguments: { query: 'select 1' } }), (e: unknown) => e instanceof McpError && e.code === -32003);
  });

  it('enforces argument constraints', async () => {
    const c = await client({ sub: 'alice', team: 'payments' });
    await assert.rejects(c.callTool({ name: 'run_sql', arguments: { query: 'DROP TABLE customers' } }), (e: unknown) => e instanceof McpError && e.code === -32003);
    const r = await c.callTool({ name: 'run_sql', arguments: { query: 'SELECT count(*) FROM invoices' } });
    assert.match((r.content as Array<{ text: string }>)[0]!.text, /Query ran/);
  });

  it('serves RFC 9728 protected-resource metadata for the governed server', async () => {
    const res = await fetch(mesh.endpoints.resourceMetadata);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as { resource: string; authorization_servers: string[] };
    assert.equal(meta.resource, mesh.endpoints.mcp);
    assert.deepEqual(meta.authorization_servers, [mesh.endpoints.issuer]);
  });

  describe('401 paths', () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    let upstreamBefore = 0;
    beforeEach(() => { upstreamBefore = mesh.demo!.requests.length; });
    afterEach(() => assert.equal(mesh.demo!.requests.length, upstreamBefore, 'a refused request must not reach the MCP server'));

    async function expect401(headers: Record<string, string>, failure: string): Promise<void> {
      const r = await rawPost(mesh.endpoints.mcp, init, headers);
      assert.equal(r.status, 401, r.text);
      const challenge = r.headers.get('www-authenticate') ?? '';
      assert.ok(challenge.startsWith(`Bearer resource_metadata="${mesh.endpoints.resourceMetadata}"`), challenge);
      const body = r.json as ErrBody;
      assert.equal(body.id, 1);
      assert.equal(body.error.code, -32001);
      assert.equal((body.error.data as unknown as { auth_failure: string }).auth_failure, failure);
    }

    it('missing token', () => expect401({}, 'missing_token'));
    it('expired token', async () => expect401({ authorization: `Bearer ${await mesh.token({ sub: 'a', ttlSec: -600 })}` }, 'expired'));
    it('wrong audience', async () => expect401({ authorization: `Bearer ${await mesh.token({ sub: 'a', audience: 'http://other.example/mcp' })}` }, 'wrong_audience'));
    it('wrong issuer', async () => {
      const other = await DevIssuer.start({ port: 0, stateDir: mkdtempSync(join(tmpdir(), 'tollgate-other-')) });
      try {
        const t = await other.mint({ sub: 'a', audience: mesh.audience, ttlSec: 600 });
        await expect401({ authorization: `Bearer ${t}` }, 'wrong_issuer');
      } finally { await other.close(); }
    });
    it('forged signature', async () => {
      const good = await mesh.token({ sub: 'alice', team: 'payments' });
      const [h, , s] = good.split('.');
      const payload = Buffer.from(JSON.stringify({ sub: 'mallory', team: 'payments', groups: ['dba'], iss: mesh.endpoints.issuer, aud: mesh.audience, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url');
      await expect401({ authorization: `Bearer ${h}.${payload}.${s}` }, 'bad_signature');
    });
    it('a token signed by an unknown key with the issuer\'s kid', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      const kid = JSON.parse(Buffer.from((await mesh.token({ sub: 'a' })).split('.')[0]!, 'base64url').toString()).kid as string;
      const t = await new SignJWT({ sub: 'mallory' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(mesh.endpoints.issuer).setAudience(mesh.audience).setExpirationTime('10m').sign(privateKey);
      await expect401({ authorization: `Bearer ${t}` }, 'bad_signature');
    });
    it('alg: none', async () => {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const t = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'mallory', iss: mesh.endpoints.issuer, aud: mesh.audience, exp: Math.floor(Date.now() / 1000) + 600 })}.`;
      await expect401({ authorization: `Bearer ${t}` }, 'algorithm_not_allowed');
    });
    it('not a bearer token', () => expect401({ authorization: 'Basic YWxpY2U6cHc=' }, 'malformed_token'));
  });

  describe('bad bodies get a clear error, never reach the server, and authz keeps serving', () => {
    let token = '';
    let upstreamBefore = 0;
    before(async () => { token = await mesh.token({ sub: 'alice', team: 'payments' }); });
    beforeEach(() => { upstreamBefore = mesh.demo!.requests.length; });
    afterEach(() => assert.equal(mesh.demo!.requests.length, upstreamBefore));

    it('malformed JSON', async () => {
      const r = await rawPost(mesh.endpoints.mcp, '{"jsonrpc":"2.0","id":1,"method":', { authorization: `Bearer ${token}` });
      assert.equal(r.status, 400);
      assert.equal((r.json as ErrBody).error.code, -32700);
    });
    it('not JSON-RPC', async () => {
      const r = await rawPost(mesh.endpoints.mcp, '{"hello":"world"}', { authorization: `Bearer ${token}` });
      assert.equal(r.status, 400);
      assert.equal((r.json as ErrBody).error.code, -32600);
    });
    it('deeply nested', async () => {
      const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs","arguments":{"query":"x","n":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`;
      const r = await rawPost(mesh.endpoints.mcp, deep, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 400);
      assert.match((r.json as ErrBody).error.message, /nests deeper/);
    });
    it('oversized (over Envoy\'s buffer limit)', async () => {
      const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search_docs', arguments: { query: 'x'.repeat(2 * 1024 * 1024) } } });
      const r = await rawPost(mesh.endpoints.mcp, big, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 413);
    });
    it('still serves good calls afterwards', async () => {
      const c = await client({ sub: 'alice', team: 'payments' });
      const res = await c.callTool({ name: 'search_docs', arguments: { query: 'chargeback' } });
      assert.match((res.content as Array<{ text: string }>)[0]!.text, /chargeback/i);
      upstreamBefore = mesh.demo!.requests.length;
    });
  });

  // Last: it kills authz. (Mocha runs a suite's own tests before its nested suites.)
  describe('fail closed', () => {
    it('with authz killed, Envoy refuses every call and the server sees none', async () => {
      const token = await mesh.token({ sub: 'alice', team: 'payments' });
      mesh.authz.kill('SIGKILL');
      await mesh.authz.exited;
      const before = mesh.demo!.requests.length;
      const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
      for (let i = 0; i < 5; i++) {
        const r = await rawPost(mesh.endpoints.mcp, init, { authorization: `Bearer ${token}` });
        assert.ok(r.status >= 400, `expected a refusal, got ${r.status}`);
      }
      assert.equal(mesh.demo!.requests.length, before);
    });
  });
});
