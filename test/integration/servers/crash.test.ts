import { strict as assert } from 'node:assert';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { StdioBridge } from '../../../src/bridge/server.js';
import { fixtureLaunch } from './support.js';

const text = (r: unknown): string => ((r as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('\n');

/** Issue 14: a stdio server that dies is restarted; callers get a clear error meanwhile and nothing hangs. */
describe('stdio bridge: a crashing server', function () {
  this.timeout(60_000);
  let bridge: StdioBridge;
  let client: Client;

  beforeEach(async () => {
    bridge = await StdioBridge.start({ name: 'fixture', launch: fixtureLaunch, maxCrashes: 3 });
    client = new Client({ name: 'crash-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(bridge.url)));
  });
  afterEach(async () => { await client.close().catch(() => undefined); await bridge.close(); });

  async function untilServed(deadlineMs: number): Promise<{ served: string; refusals: string[] }> {
    const refusals: string[] = [];
    const end = Date.now() + deadlineMs;
    for (;;) {
      try {
        return { served: text(await client.callTool({ name: 'test_simple_text', arguments: {} })), refusals };
      } catch (e) {
        assert.ok(e instanceof McpError && e.code === -32006, `unexpected ${String(e)}`);
        refusals.push(e.message);
        if (Date.now() > end) throw new Error(`not served again after ${deadlineMs} ms: ${refusals.join(' | ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  it('fails the calls in flight at once, restarts the process and keeps the session', async () => {
    const pid = bridge.list()[0]!.pid;
    // Settled into a value at once, so its rejection is never "unhandled" while we crash the server.
    const slow = client.callTool({ name: 'slow', arguments: { ms: 20_000 } }).then(() => null, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === -32006 && /exited \(code 3\).*restarting it: retry/.test(e.message));
    const slowErr = await slow;
    assert.ok(slowErr instanceof McpError && slowErr.code === -32006 && /exited/.test(slowErr.message), String(slowErr));
    assert.ok(Date.now() - t0 < 3000, 'the in-flight call did not wait for its 20 s');
    const { served, refusals } = await untilServed(15_000);
    assert.match(served, /simple text response/);
    for (const m of refusals) assert.match(m, /restarting after a crash; retry in a moment/);
    const s = bridge.list();
    assert.equal(s.length, 1, 'same session');
    assert.equal(s[0]!.restarts, 1);
    assert.notEqual(s[0]!.pid, pid, 'a new process');
  });

  it('gives up on a crash loop with a clear error instead of restarting forever', async () => {
    for (let i = 0; i < 3; i++) {
      await assert.rejects(client.callTool({ name: 'crash', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === -32006);
      if (i < 2) await untilServed(15_000);
    }
    await assert.rejects(client.callTool({ name: 'test_simple_text', arguments: {} }), (e: unknown) => e instanceof McpError && e.code === -32006 && /not available \(failed\); open a new session/.test(e.message));
  });

  it('a server that cannot start at all answers initialize with an error, not a hang', async () => {
    const broken = await StdioBridge.start({ name: 'broken', launch: () => ({ command: '/nonexistent/server', args: [], env: {}, label: 'broken' }), maxCrashes: 1 });
    try {
      const c = new Client({ name: 'x', version: '1' });
      const t0 = Date.now();
      await assert.rejects(c.connect(new StreamableHTTPClientTransport(new URL(broken.url))), /exited|not available|not running/);
      assert.ok(Date.now() - t0 < 5000);
    } finally { await broken.close(); }
  });
});
