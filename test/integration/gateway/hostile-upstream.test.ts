import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { pino } from 'pino';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { parseGatewayConfig } from '../../../src/gateway/config.js';
import { GatewayServer } from '../../../src/gateway/server.js';
import { freePort } from '../../../src/util/net.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';

/**
 * An MCP server over HTTP that answers like a server until a tool is called: `endless` answers
 * with one SSE event whose data line never ends, `fine` answers normally.
 */
async function hostileServer(port: number): Promise<Server> {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      if (req.method !== 'POST') { res.writeHead(405).end(); return; }
      const m = JSON.parse(body) as { id?: number; method: string; params?: { name?: string } };
      if (m.id === undefined) { res.writeHead(202).end(); return; }
      const json = (result: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'hostile-1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
      };
      if (m.method === 'initialize') return json({ protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } });
      if (m.method === 'tools/list') return json({ tools: [{ name: 'endless', inputSchema: { type: 'object' } }, { name: 'fine', inputSchema: { type: 'object' } }] });
      if (m.params?.name === 'fine') return json({ content: [{ type: 'text', text: 'fine' }] });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: ');
      const chunk = 'A'.repeat(1 << 20);
      const pump = (): void => { while (!res.destroyed && res.write(chunk)) { /* until the socket pushes back */ } };
      res.on('drain', pump);
      req.socket.on('close', () => res.destroy());
      pump();
    });
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return srv;
}

describe('gateway: a server that sends one endless message', function () {
  this.timeout(120_000);
  let state: string;
  let issuer: DevIssuer;
  let upstream: Server;
  let gw: GatewayServer;
  let client: Client | undefined;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-gw-hostile-'));
    const [upPort, gwPort] = [await freePort(), await freePort()];
    const upUrl = `http://127.0.0.1:${upPort}/mcp`;
    const gwUrl = `http://127.0.0.1:${gwPort}/mcp`;
    issuer = await DevIssuer.start({ port: 0, stateDir: state, exchangeClients: [{ clientId: 'gateway', secret: 's3cret-for-tests', subjectAudiences: [gwUrl], audiences: [upUrl] }] });
    upstream = await hostileServer(upPort);
    writeFileSync(join(state, 'gw-secret'), 's3cret-for-tests\n');
    gw = await GatewayServer.start(parseGatewayConfig({
      listen: `127.0.0.1:${gwPort}`, identity: { issuer: issuer.url },
      delegation: { client_id: 'gateway', client_secret_file: 'gw-secret' },
      servers: [{ name: 'hostile', url: upUrl }], list_cache_ms: 0,
      // Far longer than the test may take: the call must fail on the size bound, not on time.
      upstream_timeout_ms: 600_000,
    }, state), { logger: pino({ level: 'silent' }) });
  });

  after(async () => {
    await client?.close().catch(() => undefined);
    await gw?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
    await issuer?.close();
    rmSync(state, { recursive: true, force: true });
  });

  it('fails that call as a tool error naming the server, stays up, and serves the next call', async () => {
    client = await connectClient(gw.url, await issuer.mint({ ttlSec: 600, audience: gw.url, sub: 'alice', team: 'payments' }));
    const t0 = Date.now();
    const r = await client.callTool({ name: 'hostile__endless', arguments: {} }) as { isError?: boolean; content: Array<{ text: string }> };
    assert.equal(r.isError, true);
    assert.match(r.content[0]!.text, /server "hostile" sent a message over 33554432 bytes/);
    assert.ok(Date.now() - t0 < 60_000, 'failed on the bound, not on a timeout');
    assert.ok(process.memoryUsage().rss < 1024 * 1024 * 1024, `rss ${process.memoryUsage().rss}`);
    const ok = await client.callTool({ name: 'hostile__fine', arguments: {} }) as { content: Array<{ text: string }> };
    assert.equal(ok.content[0]!.text, 'fine');
  });

  it('a body that is not JSON gets a JSON-RPC Parse error (-32700)', async () => {
    const token = await issuer.mint({ ttlSec: 600, audience: gw.url, sub: 'alice' });
    const r = await rawPost(gw.url, '{not json', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 400);
    assert.equal((r.json as { error: { code: number } }).error.code, -32700);
  });
});
