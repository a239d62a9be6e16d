import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { decodeJwt, decodeProtectedHeader, exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify } from 'jose';
import { LocalMesh } from '../../../src/mesh/local.js';
import { connectClient } from '../../support/mcp-client.js';
import { decisions, until } from '../budget-e2e/support.js';

const UPSTREAM_AUD = 'https://payments-mcp.internal/mcp';

/**
 * Issue 17: instead of one static header, each allowed call reaches the upstream with a
 * short-lived credential minted for its caller (sub = caller, act = agent, aud = upstream), and
 * the decision record names that credential by id.
 */
describe('per-call upstream credentials through the mesh', function () {
  this.timeout(120_000);
  let state: string;
  let mesh: LocalMesh;
  let publicPem = '';
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-upcred-'));
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    publicPem = await exportSPKI(publicKey);
    const keyFile = join(state, 'upstream-signing.key');
    writeFileSync(keyFile, await exportPKCS8(privateKey), { mode: 0o600 });
    const config = join(state, 'authz.yaml');
    writeFileSync(config, `upstream_credentials:\n  key_file: ${keyFile}\n  issuer: tollgate-authz\n  audience: ${UPSTREAM_AUD}\n  ttl_sec: 300\n  renew_before_sec: 60\n`);
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: join(state, 'mesh'), authzArgs: ['--config', config], authzTimeoutMs: 5000,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  async function call(sub: string, agent: string): Promise<void> {
    const c = await connectClient(mesh.endpoints.mcp, await mesh.token({ sub, team: 'payments', agent }));
    clients.push(c);
    await c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
  }

  it('the upstream gets a credential for this caller, signed by Tollgate, never the caller\'s token', async () => {
    await call('alice', 'claude');
    const seen = mesh.demo!.requests.map((r) => r.authorization).filter((a): a is string => a !== null);
    assert.ok(seen.length > 0, 'the upstream saw an Authorization header');
    const token = seen.at(-1)!.replace(/^Bearer /, '');
    const { payload } = await jwtVerify(token, await importSPKI(publicPem, 'ES256'), { issuer: 'tollgate-authz', audience: UPSTREAM_AUD });
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.act, { sub: 'claude' });
    assert.ok(payload.exp! - payload.iat! <= 300);
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
  });

  it('the decision record names the credential by id (its jti), never its value', async () => {
    const token = mesh.demo!.requests.at(-1)!.authorization!.replace(/^Bearer /, '');
    const jti = String(decodeJwt(token).jti);
    const rec = await until(() => decisions(join(state, 'mesh')).find((r) => r.upstream_credential === jti), 'a record naming the credential');
    assert.equal(rec.result.allow, true);
    assert.ok(!JSON.stringify(rec).includes(token.split('.')[2]!), 'the record must not hold the credential');
  });

  it('one credential per caller, reused while fresh; another caller or agent gets its own', async () => {
    const jtiOf = (i: number): string => String(decodeJwt(mesh.demo!.requests.at(i)!.authorization!.replace(/^Bearer /, '')).jti);
    await call('alice', 'claude');
    const a1 = jtiOf(-1);
    await call('alice', 'claude');
    assert.equal(jtiOf(-1), a1, 'reused until near expiry');
    await call('bob', 'claude');
    const b = decodeJwt(mesh.demo!.requests.at(-1)!.authorization!.replace(/^Bearer /, ''));
    assert.equal(b.sub, 'bob');
    assert.notEqual(b.jti, a1);
    await call('alice', 'cursor');
    assert.notEqual(jtiOf(-1), a1, 'the same person through another agent is another caller');
  });
});
