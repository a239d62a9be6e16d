import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { parseGatewayConfig } from '../../../src/gateway/config.js';
import { GatewayServer } from '../../../src/gateway/server.js';
import { readRecords } from '../../../src/decisionlog/reader.js';
import { freePort } from '../../../src/util/net.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';
import { NotesServer } from '../../support/notes-server.js';

type Text = { content: Array<{ type: string; text: string }>; isError?: boolean };

/**
 * Issue 15: the gateway in front of two governed servers (the demo server and a notes server,
 * each behind its own real Envoy + authz), the MCP SDK client as the agent, RFC 8693 delegation at
 * the shared issuer. The gateway may never widen what a server's policy grants the caller.
 */
describe('gateway: one endpoint for several governed servers', function () {
  this.timeout(180_000);
  let state: string;
  let issuer: DevIssuer;
  let demo: LocalMesh;
  let notesMesh: LocalMesh;
  let notes: NotesServer;
  let gw: GatewayServer;
  let opt: GatewayServer;
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-gw-'));
    const [demoPort, notesPort, gwPort, optPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const demoUrl = `http://127.0.0.1:${demoPort}/mcp`;
    const notesUrl = `http://127.0.0.1:${notesPort}/mcp`;
    const gwUrl = `http://127.0.0.1:${gwPort}/mcp`;
    const optUrl = `http://127.0.0.1:${optPort}/mcp`;
    issuer = await DevIssuer.start({
      port: 0, stateDir: state,
      exchangeClients: [{ clientId: 'gateway', secret: 's3cret-for-tests', subjectAudiences: [gwUrl, optUrl], audiences: [demoUrl, notesUrl] }],
    });
    // The notes server's policy: the example policy with a catalogue entry for it.
    const pol = join(state, 'policies');
    cpSync('policies', pol, { recursive: true });
    const data = JSON.parse(readFileSync(join(pol, 'data.json'), 'utf8'));
    data.tollgate.config.servers.notes = { tools: { add_note: { class: 'write' }, list_notes: { class: 'read' }, count_slowly: { class: 'read' } } };
    writeFileSync(join(pol, 'data.json'), JSON.stringify(data));
    notes = await NotesServer.start();
    demo = await LocalMesh.start({ policies: 'policies', stateDir: join(state, 'demo'), issuer, authzTimeoutMs: 5000, ports: { envoy: demoPort, envoyAdmin: 0, authz: 0, issuer: 0 } });
    notesMesh = await LocalMesh.start({ policies: pol, stateDir: join(state, 'notes'), issuer, server: 'notes', authzTimeoutMs: 5000, upstream: { host: '127.0.0.1', port: notes.port }, echo: process.env.TOLLGATE_TEST_ECHO === '1', ports: { envoy: notesPort, envoyAdmin: 0, authz: 0, issuer: 0 } });
    writeFileSync(join(state, 'gw-secret'), 's3cret-for-tests\n');
    const base = {
      identity: { issuer: issuer.url },
      delegation: { client_id: 'gateway', client_secret_file: 'gw-secret' },
      servers: [{ name: 'demo', url: demoUrl }, { name: 'notes', url: notesUrl }],
      list_cache_ms: 0,
    };
    gw = await GatewayServer.start(parseGatewayConfig({ ...base, listen: `127.0.0.1:${gwPort}` }, state), { logger: pino({ level: 'silent' }) });
    opt = await GatewayServer.start(parseGatewayConfig({ ...base, listen: `127.0.0.1:${optPort}`, mode: 'optimizer', optimizer: { search: 'bm25' } }, state), { logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.close();
    await opt?.close();
    await demo?.stop();
    await notesMesh?.stop();
    await notes?.close();
    await issuer?.close();
    rmSync(state, { recursive: true, force: true });
  });

  const token = (g: GatewayServer, claims: { sub: string; team?: string; groups?: string[] }): Promise<string> =>
    issuer.mint({ ttlSec: 600, audience: g.url, ...claims });

  async function agent(g: GatewayServer, claims: { sub: string; team?: string; groups?: string[] }): Promise<Client> {
    const c = await connectClient(g.url, await token(g, claims));
    clients.push(c);
    return c;
  }

  it('merges both servers\' tools, namespaced, as each server\'s policy lists them for the caller', async () => {
    const c = await agent(gw, { sub: 'alice', team: 'payments' });
    const names = (await c.listTools()).tools.map((t) => t.name).sort();
    for (const n of ['demo__search_docs', 'demo__create_ticket', 'notes__add_note', 'notes__list_notes']) assert.ok(names.includes(n), `${n} listed`);
    assert.ok(!names.includes('demo__delete_records'), 'a destructive tool the caller may not call is hidden, as the demo server\'s policy hides it');
    const support = await agent(gw, { sub: 'sam', team: 'support' });
    const sNames = (await support.listTools()).tools.map((t) => t.name);
    assert.ok(sNames.includes('notes__list_notes'));
    assert.ok(!sNames.includes('notes__add_note'), 'support may not write notes, so it is not listed');
  });

  it('routes a call to the right server as the caller, and the record shows caller and gateway', async () => {
    const c = await agent(gw, { sub: 'alice', team: 'payments' });
    const r = await c.callTool({ name: 'notes__add_note', arguments: { text: 'via gateway' } }) as Text;
    assert.equal(r.content[0]!.text, 'saved note 1');
    assert.deepEqual(notes.notes, ['via gateway']);
    const d = await c.callTool({ name: 'demo__search_docs', arguments: { query: 'refund' } }) as Text;
    assert.match(d.content[0]!.text, /Refund policy/);
    assert.ok(demo.demo!.requests.every((x) => x.authorization === null), 'no token reaches the server');
    const recs = [...readRecords(join(state, 'notes', 'decisions'))].map((x) => x.record).filter((x) => x.mcp.tool === 'add_note');
    assert.equal(recs.length, 1);
    assert.equal(recs[0]!.identity.sub, 'alice');
    assert.deepEqual(recs[0]!.identity.delegation, [{ sub: 'gateway' }]);
    assert.equal(recs[0]!.result.allow, true);
  });

  it('refuses through the gateway exactly what the server refuses: direct, namespaced, via call_tool, via find_tool', async () => {
    const s = await agent(gw, { sub: 'sam', team: 'support' });
    await assert.rejects(s.callTool({ name: 'notes__add_note', arguments: { text: 'nope' } }), (e: unknown) => {
      assert.ok(e instanceof McpError);
      assert.match(e.message, /may not use tool add_note/);
      assert.ok((e.data as { decision_id?: string }).decision_id, 'the agent gets the decision id');
      return true;
    });
    const p = await agent(gw, { sub: 'alice', team: 'payments' });
    await assert.rejects(p.callTool({ name: 'demo__delete_records', arguments: { table: 'refunds', where: 'id = 1' } }), /destructive/);
    const o = await agent(opt, { sub: 'sam', team: 'support' });
    await assert.rejects(o.callTool({ name: 'call_tool', arguments: { name: 'notes__add_note', arguments: { text: 'nope' } } }), /may not use tool add_note/);
    await assert.rejects(o.callTool({ name: 'notes__add_note', arguments: { text: 'nope' } }), /may not use tool add_note/);
    const found = await o.callTool({ name: 'find_tool', arguments: { description: 'save a note', limit: 10 } }) as Text;
    const names = (JSON.parse(found.content[0]!.text) as { tools: { name: string }[] }).tools.map((t) => t.name);
    assert.ok(!names.includes('notes__add_note'), 'find_tool never offers a tool the caller may not call');
    assert.deepEqual(notes.notes, ['via gateway'], 'nothing ran');
  });

  it('optimizer mode lists only find_tool and call_tool, finds the right tool and calls it', async () => {
    const c = await agent(opt, { sub: 'alice', team: 'payments' });
    assert.deepEqual((await c.listTools()).tools.map((t) => t.name).sort(), ['call_tool', 'find_tool']);
    const found = await c.callTool({ name: 'find_tool', arguments: { description: 'search the payments handbook documentation' } }) as Text;
    const tools = (JSON.parse(found.content[0]!.text) as { tools: { name: string; inputSchema: unknown }[] }).tools;
    assert.equal(tools[0]!.name, 'demo__search_docs');
    assert.ok(tools[0]!.inputSchema, 'schemas come with the results');
    const r = await c.callTool({ name: 'call_tool', arguments: { name: 'demo__search_docs', arguments: { query: 'chargeback' } } }) as Text;
    assert.match(r.content[0]!.text, /chargeback/i);
  });

  it('passes progress notifications and cancellation through', async () => {
    const c = await agent(gw, { sub: 'alice', team: 'payments' });
    const seen: number[] = [];
    const r = await c.callTool({ name: 'notes__count_slowly', arguments: { n: 4 } }, undefined, { onprogress: (p) => seen.push(p.progress) }) as Text;
    assert.equal(r.content[0]!.text, 'counted to 4');
    assert.deepEqual(seen, [1, 2, 3, 4]);
    const ac = new AbortController();
    const before = notes.cancelled;
    const pending = c.callTool({ name: 'notes__count_slowly', arguments: { n: 200 } }, undefined, { signal: ac.signal, onprogress: () => undefined });
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(pending);
    for (let i = 0; i < 50 && notes.cancelled === before; i++) await new Promise((r2) => setTimeout(r2, 100));
    assert.equal(notes.cancelled, before + 1, 'the server saw the cancellation');
  });

  it('keeps tokens apart: a gateway token is refused by a server, a server token by the gateway, and sessions stay with their owner', async () => {
    const gwTok = await token(gw, { sub: 'alice', team: 'payments' });
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    assert.equal((await rawPost(demo.endpoints.mcp, init, { authorization: `Bearer ${gwTok}` })).status, 401, 'no token passthrough: the gateway\'s token is not good at the server');
    const serverTok = await demo.token({ sub: 'alice', team: 'payments' });
    const r = await rawPost(gw.url, init, { authorization: `Bearer ${serverTok}` });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/);
    const ok = await rawPost(gw.url, init, { authorization: `Bearer ${gwTok}` });
    const sid = ok.headers.get('mcp-session-id')!;
    assert.ok(sid);
    const bob = await token(gw, { sub: 'bob', team: 'payments' });
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const hijack = await rawPost(gw.url, list, { authorization: `Bearer ${bob}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(hijack.status, 403, 'another identity cannot use the session');
  });

  it('a server that goes down fails its own tools with a clear error, not the session, and comes back', async () => {
    const c = await agent(gw, { sub: 'alice', team: 'payments' });
    await c.listTools();
    const port = notes.port;
    await notes.close();
    const down = await c.callTool({ name: 'notes__list_notes', arguments: {} }) as Text;
    assert.equal(down.isError, true);
    assert.match(down.content[0]!.text, /server "notes" is unavailable/);
    const listed = (await c.listTools()).tools.map((t) => t.name);
    assert.ok(listed.includes('demo__search_docs'), 'the other server\'s tools stay');
    notes = await NotesServer.start(port);
    await new Promise((r) => setTimeout(r, 2100));
    const back = await c.callTool({ name: 'notes__list_notes', arguments: {} }) as Text;
    assert.equal(back.isError, undefined);
    assert.equal(back.content[0]!.text, '[]', 'a fresh server, reached on a new upstream session');
  });
});
