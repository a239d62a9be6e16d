import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startGoverned, stopGoverned, type GovernedServer } from '../../../src/servers/governed.js';
import { parseSource } from '../../../src/registry/source.js';
import { connectClient } from '../../support/mcp-client.js';
import { VERSIONS } from './support.js';


const text = (r: unknown): string => ((r as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('\n');

type Rec = { mcp: { method: string | null; tool: string | null; server: string }; result: { allow: boolean } };

function decisionsOf(stateDir: string): Rec[] {
  const dir = join(stateDir, 'decisions');
  const out: Rec[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line) as { schema?: string };
      if (r.schema === 'tollgate.decision/v1') out.push(r as unknown as Rec);
    }
  }
  return out;
}

/**
 * Issue 14 with real servers from npm and PyPI: each installed at a pinned version, bridged, and
 * governed through its own Envoy + authz pair by the MCP SDK client. Runs the servers as local
 * processes (--isolation none).
 */
describe('servers Tollgate runs: real npm and PyPI servers through the mesh', function () {
  this.timeout(600_000);
  let state: string;
  let mount: string;
  let governed: GovernedServer[];
  const clients: Client[] = [];
  const byName = (n: string): GovernedServer => governed.find((g) => g.server.name === n)!;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-servers-'));
    mount = mkdtempSync(join(tmpdir(), 'tollgate-fs-mount-'));
    writeFileSync(join(mount, 'inside.txt'), 'hello from inside the mount\n');
    mkdirSync(join(state, 'outside'), { recursive: true });
    writeFileSync(join(state, 'outside', 'secret.txt'), 'must not be readable\n');
    const spec = (name: string, source: string, args: string[] = []) => ({ name, source: parseSource(source), args, env: {}, isolation: 'none' as const, stateDir: state });
    governed = await startGoverned([
      spec('everything', VERSIONS.everything),
      spec('fs', VERSIONS.filesystem, [mount]),
      spec('time', VERSIONS.time, ['--local-timezone', 'UTC']),
    ], {
      policies: 'test/fixtures/servers-policy', stateDir: state, ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    if (governed) await stopGoverned(governed);
    rmSync(state, { recursive: true, force: true });
    rmSync(mount, { recursive: true, force: true });
  });

  async function client(server: string, sub = 'alice'): Promise<Client> {
    const g = byName(server);
    const c = await connectClient(g.mesh.endpoints.mcp, await g.mesh.token({ sub, team: 'payments' }));
    clients.push(c);
    return c;
  }

  const denied = (e: unknown): boolean => e instanceof McpError && e.code === -32003;

  it('everything (npm): allowed call, denied call, filtered list, each recorded under the server name', async () => {
    const c = await client('everything');
    const tools = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(tools.includes('echo'), tools.join(','));
    assert.ok(!tools.includes('get-env'), 'the policy hides get-env from the list');
    assert.match(text(await c.callTool({ name: 'echo', arguments: { message: 'through the mesh' } })), /through the mesh/);
    await assert.rejects(c.callTool({ name: 'get-env', arguments: {} }), denied);
    const recs = decisionsOf(state).filter((r) => r.mcp.server === 'everything' && r.mcp.method === 'tools/call');
    assert.ok(recs.some((r) => r.mcp.tool === 'echo' && r.result.allow));
    assert.ok(recs.some((r) => r.mcp.tool === 'get-env' && !r.result.allow));
  });

  it('everything (npm): progress notifications arrive while the call runs', async () => {
    const c = await client('everything');
    const seen: number[] = [];
    const r = await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.match(text(r), /completed/);
    assert.deepEqual(seen, [1, 2, 3, 4]);
  });

  it('everything (npm): a cancelled call ends at once, the cancellation is judged and recorded, the session goes on', async () => {
    const c = await client('everything');
    const ac = new AbortController();
    const t0 = Date.now();
    const call = c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 6, steps: 6 } }, undefined, {
      signal: ac.signal, onprogress: () => ac.abort('user gave up'),
    });
    await assert.rejects(call);
    assert.ok(Date.now() - t0 < 4000, 'cancelled long before the 6 s operation ends');
    assert.match(text(await c.callTool({ name: 'echo', arguments: { message: 'still here' } })), /still here/);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(decisionsOf(state).some((r) => r.mcp.server === 'everything' && r.mcp.method === 'notifications/cancelled' && r.result.allow));
  });

  it('filesystem (npm): reads inside its directory, fails outside it, write_file denied by policy', async () => {
    const c = await client('fs');
    assert.match(text(await c.callTool({ name: 'read_text_file', arguments: { path: join(mount, 'inside.txt') } })), /hello from inside/);
    const outside = await c.callTool({ name: 'read_text_file', arguments: { path: join(state, 'outside', 'secret.txt') } }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }));
    assert.equal((outside as { isError?: boolean }).isError, true);
    assert.doesNotMatch(text(outside), /must not be readable/);
    await assert.rejects(c.callTool({ name: 'write_file', arguments: { path: join(mount, 'x.txt'), content: 'x' } }), denied);
  });

  it('time (PyPI): allowed and denied tools, list filtered', async () => {
    const c = await client('time');
    const tools = (await c.listTools()).tools.map((t) => t.name);
    assert.deepEqual(tools, ['get_current_time']);
    assert.match(text(await c.callTool({ name: 'get_current_time', arguments: { timezone: 'UTC' } })), /"timezone": "UTC"/);
    await assert.rejects(c.callTool({ name: 'convert_time', arguments: { source_timezone: 'UTC', time: '12:00', target_timezone: 'Europe/Paris' } }), denied);
  });

  it('every server has its own sidecar pair and one issuer: a token for one server is refused by another', async () => {
    const fsMesh = byName('fs').mesh;
    assert.equal(byName('time').mesh.endpoints.issuer, fsMesh.endpoints.issuer);
    const tokenForFs = await fsMesh.token({ sub: 'alice' });
    await assert.rejects(connectClient(byName('time').mesh.endpoints.mcp, tokenForFs));
  });
});
