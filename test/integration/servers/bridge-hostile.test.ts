import { strict as assert } from 'node:assert';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioBridge } from '../../../src/bridge/server.js';
import { fixtureLaunch } from './support.js';

/** Waits until the bridge has no session left (idle expiry closed it), or fails after ms. */
async function untilNoSession(bridge: StdioBridge, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (bridge.list().length > 0) {
    if (Date.now() > end) throw new Error(`the session was not expired within ${ms} ms: it still counts a request in flight`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** JSON-RPC messages of a Streamable HTTP response body (JSON or SSE). */
function messagesOf(contentType: string, body: string): Array<Record<string, unknown>> {
  if (contentType.includes('application/json')) return [JSON.parse(body) as Record<string, unknown>];
  return body.split('\n').filter((l) => l.startsWith('data:') && l.length > 6).map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>);
}

/** Requests a client may send that a stdio server cannot be handed, or never answers, must not leave a session busy forever. */
describe('stdio bridge: requests that never get a server answer', function () {
  this.timeout(60_000);
  let bridge: StdioBridge;
  beforeEach(async () => { bridge = await StdioBridge.start({ name: 'fixture', launch: fixtureLaunch, idleTimeoutMs: 500 }); });
  afterEach(async () => { await bridge.close(); });

  it('a cancelled call ends its stream and no longer counts as in flight, so the idle session expires', async () => {
    const client = new Client({ name: 'cancel-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(bridge.url)));
    const abort = new AbortController();
    const call = client.callTool({ name: 'slow', arguments: { ms: 30_000 } }, undefined, { signal: abort.signal }).then(() => 'answered', (e: Error) => `${e.name}: ${e.message}`);
    await new Promise((r) => setTimeout(r, 300));
    abort.abort();
    assert.match(await call, /AbortError/, 'the client gave up on the call');
    // No DELETE: the session must expire on its own once idle, as with clients that never send one.
    await untilNoSession(bridge, 10_000);
  });

  it('a request nested too deeply, bad UTF-8 or an empty batch is refused before the server, and the session stays usable and expires', async () => {
    const post = async (body: string, sid?: string): Promise<{ sid: string | null; messages: Array<Record<string, unknown>> }> => {
      const res = await fetch(bridge.url, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...(sid ? { 'mcp-session-id': sid } : {}) } });
      const text = await res.text();
      return { sid: res.headers.get('mcp-session-id'), messages: res.status === 202 ? [] : messagesOf(res.headers.get('content-type') ?? '', text) };
    };
    const init = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'deep', version: '1' } } }));
    const sid = init.sid!;
    assert.ok(sid);
    await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), sid);
    const depth = 100_000;
    const deep = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    const refused = async (body: string | Uint8Array, code: number, why: RegExp): Promise<void> => {
      const res = await fetch(bridge.url, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid } });
      const err = (await res.json() as { error: { code: number; message: string } }).error;
      assert.equal(res.status, 400);
      assert.equal(err.code, code);
      assert.match(err.message, why);
    };
    await refused(`{"jsonrpc":"2.0","id":"deep-1","method":"tools/call","params":{"name":"echo","arguments":${deep}}}`, -32600, /nests deeper than 64 levels/);
    await refused(new Uint8Array([...Buffer.from('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"t":"'), 0xff, 0xfe, ...Buffer.from('"}}}')]), -32700, /not valid UTF-8/);
    await refused('[]', -32600, /empty JSON-RPC batch/);
    const ok = await post(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), sid);
    assert.ok(Array.isArray((ok.messages[0]?.result as { tools?: unknown[] } | undefined)?.tools), 'the session still serves');
    await untilNoSession(bridge, 10_000);
  });
});
