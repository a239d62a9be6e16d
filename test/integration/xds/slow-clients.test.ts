import { strict as assert } from 'node:assert';
import { createServer, get, type Server } from 'node:http';
import { connect } from 'node:net';
import { staticBootstrap } from '../../../src/envoy/bootstrap.js';
import { LISTENER_NAME, type DownstreamLimits, type SidecarSpec } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { waitForListener } from '../../../src/envoy/listeners.js';
import { freePort } from '../../../src/util/net.js';
import { eventually, http, startFakeAuthz, type FakeAuthz } from './harness.js';

/**
 * Slowloris and connection floods against a real Envoy running the sidecar's listener, with the
 * limits shortened so each attack is over in a few seconds.
 */

/** `answeredMs`: when Envoy's first byte arrived (-1: never). */
interface Closed { afterMs: number; answeredMs: number; data: string }

/**
 * A raw client: connects, writes `first`, then writes `drip` every `everyMs` until Envoy closes
 * the connection. Resolves with how long after connecting that was, when Envoy answered and what.
 */
function rawClient(port: number, first: string, drip?: { chunk: string; everyMs: number }): { connected: Promise<void>; closed: Promise<Closed>; destroy(): void } {
  const sock = connect(port, '127.0.0.1');
  let t0 = 0;
  let data = '';
  let answeredMs = -1;
  let timer: NodeJS.Timeout | undefined;
  const connected = new Promise<void>((resolve) => sock.once('connect', () => {
    t0 = Date.now();
    if (first) sock.write(first);
    if (drip) timer = setInterval(() => { if (!sock.destroyed) sock.write(drip.chunk); }, drip.everyMs);
    resolve();
  }));
  sock.on('data', (d: Buffer) => {
    if (answeredMs < 0) answeredMs = Date.now() - t0;
    data += d.toString('latin1');
  });
  sock.on('error', () => { /* a reset is one way of being closed */ });
  const closed = new Promise<Closed>((resolve) => sock.once('close', () => {
    clearInterval(timer);
    resolve({ afterMs: Date.now() - t0, answeredMs, data });
  }));
  return { connected, closed, destroy: () => sock.destroy() };
}

/** Envoy's delayed_close_timeout (default 1 s): after its 408 it waits this long for the client to close. */
const DELAYED_CLOSE_MS = 1000;

/** The 408 came at `limitMs`, and the connection was gone one delayed close later at the latest. */
function assertTimedOut(c: Closed, limitMs: number): void {
  assert.match(c.data, /^HTTP\/1\.1 408 /);
  assert.ok(c.answeredMs >= limitMs - 100 && c.answeredMs < limitMs + 500, `408 after ${c.answeredMs} ms, limit ${limitMs} ms`);
  assert.ok(c.afterMs >= c.answeredMs && c.afterMs < limitMs + DELAYED_CLOSE_MS + 500, `closed after ${c.afterMs} ms`);
}

/** A stream that only a sidecar which lets SSE live can deliver: silent for `gapMs` between events. */
async function startSlowSse(gapMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET') {
      req.resume();
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"jsonrpc":"2.0","id":1,"result":{}}'); });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    setTimeout(() => { res.write('data: second\n\n'); res.end(); }, gapMs);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

async function stat(envoy: RunningEnvoy, name: string): Promise<number> {
  const text = await envoy.admin(`/stats?filter=${encodeURIComponent(`^${name.replace(/\./g, '\\.')}$`)}`);
  const m = /:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('the sidecar listener against slow clients and connection floods (real Envoy)', function () {
  this.timeout(60_000);

  const LIMITS: DownstreamLimits = { requestHeadersTimeoutMs: 1000, requestTimeoutMs: 2000, connectionIdleTimeoutMs: 2000, maxConnections: 5 };
  const SSE_GAP_MS = 3500; // longer than every limit above
  let upstream: { port: number; close(): Promise<void> };
  let authz: FakeAuthz;
  let envoy: RunningEnvoy;
  let listen: number;

  const spec = (port: number, downstream: Partial<DownstreamLimits>): SidecarSpec => ({
    nodeId: 'team-c/files', server: 'files', namespace: 'team-c',
    listen: { host: '127.0.0.1', port }, mcpPath: '/mcp',
    upstream: { host: '127.0.0.1', port: upstream.port },
    authz: { host: '127.0.0.1', port: authz.port, timeoutMs: 2000 },
    maxRequestBytes: 64 * 1024, resourceMetadata: { resource: `http://127.0.0.1:${port}/mcp` }, extProc: true,
    downstream,
  });

  const call = (port: number): Promise<{ status: number }> => http(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
  });

  before(async () => {
    upstream = await startSlowSse(SSE_GAP_MS);
    authz = await startFakeAuthz();
    listen = await freePort();
    const adminPort = await freePort();
    envoy = await startEnvoy({ config: staticBootstrap(spec(listen, LIMITS), adminPort), adminPort, concurrency: 1 });
    await waitForListener(envoy, LISTENER_NAME, listen);
  });

  after(async () => {
    await envoy?.stop();
    await authz?.stop();
    await upstream?.close();
  });

  it('closes a connection whose headers trickle in, at request_headers_timeout, before authz sees anything', async () => {
    const checks = authz.checks.length;
    const c = rawClient(listen, 'POST /mcp HTTP/1.1\r\nHost: files\r\n', { chunk: 'X-Slow: 1\r\n', everyMs: 200 });
    const closed = await c.closed;
    console.log(`      slow headers (limit ${LIMITS.requestHeadersTimeoutMs} ms): "${closed.data.split('\r\n')[0]}" after ${closed.answeredMs} ms, closed after ${closed.afterMs} ms`);
    assertTimedOut(closed, LIMITS.requestHeadersTimeoutMs);
    assert.equal(authz.checks.length, checks);
  });

  it('closes a connection whose body trickles in, at request_timeout', async () => {
    const checks = authz.checks.length;
    const c = rawClient(listen, 'POST /mcp HTTP/1.1\r\nHost: files\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n', { chunk: ' ', everyMs: 200 });
    const closed = await c.closed;
    console.log(`      slow body (limit ${LIMITS.requestTimeoutMs} ms): "${closed.data.split('\r\n')[0]}" after ${closed.answeredMs} ms, closed after ${closed.afterMs} ms`);
    assertTimedOut(closed, LIMITS.requestTimeoutMs);
    assert.equal(authz.checks.length, checks);
  });

  it('closes a connection that never sends a byte, at the connection idle timeout', async () => {
    const c = rawClient(listen, '');
    const { afterMs, data } = await c.closed;
    console.log(`      silent connection: closed after ${afterMs} ms (limit ${LIMITS.connectionIdleTimeoutMs} ms)`);
    assert.ok(afterMs >= LIMITS.connectionIdleTimeoutMs - 100 && afterMs < LIMITS.connectionIdleTimeoutMs + 1500, `closed after ${afterMs} ms`);
    assert.equal(data, '');
  });

  it('lets an SSE stream stay silent for longer than every one of those limits', async () => {
    const t0 = Date.now();
    const events = await new Promise<string>((resolve, reject) => {
      get(`http://127.0.0.1:${listen}/mcp`, { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET /mcp: ${res.statusCode}`));
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => resolve(body));
        res.on('error', reject);
      }).on('error', reject);
    });
    const ms = Date.now() - t0;
    console.log(`      SSE stream with a ${SSE_GAP_MS} ms silence: both events after ${ms} ms`);
    assert.equal(events, 'data: first\n\ndata: second\n\n');
    assert.ok(ms >= SSE_GAP_MS);
  });

  it('closes connections past the listener limit at once; admin answers and calls resume when the flood ends', async () => {
    const active = (): Promise<number> => stat(envoy, 'connection_limit.tollgate_mcp.active_connections');
    await eventually('no connections left from earlier tests', async () => (await active()) === 0);
    const limitedBefore = await stat(envoy, 'connection_limit.tollgate_mcp.limited_connections');
    const holders = Array.from({ length: LIMITS.maxConnections }, () => rawClient(listen, 'GET /mcp HTTP/1.1\r\n'));
    await Promise.all(holders.map((h) => h.connected));
    await eventually('the holders counted', async () => (await active()) === LIMITS.maxConnections, 2000);

    const extra = rawClient(listen, '');
    const refused = await extra.closed;
    console.log(`      connection ${LIMITS.maxConnections + 1}: closed after ${refused.afterMs} ms`);
    assert.ok(refused.afterMs < 500, `the connection past the limit lived ${refused.afterMs} ms`);
    assert.equal(refused.data, '');
    assert.equal(await stat(envoy, 'connection_limit.tollgate_mcp.limited_connections'), limitedBefore + 1);
    assert.equal((await envoy.admin('/ready')).trim(), 'LIVE');

    for (const h of holders) h.destroy();
    await eventually('the holders gone', async () => (await active()) === 0, 5000);
    assert.equal((await call(listen)).status, 200);
  });

  it('caps the whole process with the overload manager, except admin', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const other = await startEnvoy({ config: staticBootstrap(spec(port, { maxConnections: 1000 }), adminPort, undefined, undefined, 3), adminPort, concurrency: 1 });
    try {
      await waitForListener(other, LISTENER_NAME, port);
      const holders = Array.from({ length: 3 }, () => rawClient(port, ''));
      await Promise.all(holders.map((h) => h.connected));
      await eventually('three connections held', async () => (await stat(other, 'connection_limit.tollgate_mcp.active_connections')) === 3, 2000);
      const refused = await rawClient(port, '').closed;
      console.log(`      connection past the process-wide cap: closed after ${refused.afterMs} ms`);
      assert.ok(refused.afterMs < 500, `lived ${refused.afterMs} ms`);
      assert.equal(await stat(other, `listener.127.0.0.1_${port}.downstream_global_cx_overflow`), 1);
      assert.equal((await other.admin('/ready')).trim(), 'LIVE');
      for (const h of holders) h.destroy();
      await eventually('a call gets through again', async () => (await call(port)).status === 200, 5000);
    } finally {
      await other.stop();
    }
  });
});
