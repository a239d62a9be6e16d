import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { LocalMesh } from '../../../src/mesh/local.js';
import { staticBootstrap } from '../../../src/envoy/bootstrap.js';
import { AUTHZ_CLUSTER } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { freePort, waitForPort } from '../../../src/util/net.js';
import { selfCommand } from '../../../src/util/self.js';
import { projectRoot } from '../../../src/util/tools.js';

const echo = process.env.TOLLGATE_TEST_ECHO === '1';
const PORTS = { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 };

/** The demo server's catalogue as a tools/list result: team support may see the first three only. */
const TOOLS = ['search_docs', 'get_customer', 'create_ticket', 'delete_records', 'run_sql'].map((name) => ({ name, description: `${name} tool`, inputSchema: { type: 'object' } }));
const HIDDEN = ['delete_records', 'run_sql'];

/**
 * An MCP server that answers tools/list in the ways a careless or hostile server might, chosen by
 * the `x-variant` request header: compressed (whatever the client accepts), with a byte order mark,
 * as text/plain, over 8 MiB, or (GET with Last-Event-ID) replaying the list on a resumed stream.
 */
class AwkwardServer {
  readonly acceptEncodings: Array<string | null> = [];
  readonly seen: Array<{ method: string; rpc: string | null; decisionId: string | null }> = [];
  private http!: Server;
  port = 0;

  async start(): Promise<this> {
    this.http = createServer((req, res) => { void this.handle(req, res); });
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.port = (this.http.address() as { port: number }).port;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) as { id?: number; method?: string } : null;
    const decisionId = typeof req.headers['x-tollgate-decision-id'] === 'string' ? req.headers['x-tollgate-decision-id'] : null;
    this.seen.push({ method: req.method ?? '', rpc: body?.method ?? null, decisionId });
    const list = (id: number | undefined): string => JSON.stringify({ jsonrpc: '2.0', id: id ?? 1, result: { tools: TOOLS } });
    if (req.method === 'GET') {
      // Resumption: the list answer the client missed is replayed on the GET stream.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`id: ${req.headers['last-event-id'] ?? '0'}-1\ndata: ${list(3)}\n\n`);
      return;
    }
    if (body?.method === 'initialize') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'awkward-1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'awkward', version: '1' } } }));
      return;
    }
    this.acceptEncodings.push(typeof req.headers['accept-encoding'] === 'string' ? req.headers['accept-encoding'] : null);
    const text = list(body?.id);
    switch (req.headers['x-variant']) {
      case 'gzip':
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(text));
        return;
      case 'bom':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
        return;
      case 'text':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(text);
        return;
      case 'huge': {
        const big = { jsonrpc: '2.0', id: body?.id, result: { tools: TOOLS.map((t) => ({ ...t, description: t.description + ' '.repeat(2 * 1024 * 1024) })) } };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(big));
        return;
      }
      case 'sse-bom':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`event: message\ndata: ${text}\n\n`)]));
        return;
      default:
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
    }
  }

  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }
}

const listRequest = JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'tools/list', params: {} });

/**
 * Issue 10, "suspected from reading": list filtering must not be bypassed by how a server encodes
 * its answer, nor by a response stream that lands on another authz replica than its Check.
 * Through the real mesh: Envoy, authz (own process, example policies), this server upstream.
 */
describe('list answers that cannot be filtered are withheld, end to end', function () {
  this.timeout(120_000);
  let state: string;
  let upstream: AwkwardServer;
  let mesh: LocalMesh;
  let token = '';

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-awkward-e2e-'));
    upstream = await new AwkwardServer().start();
    mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo, upstream: { host: '127.0.0.1', port: upstream.port } });
    token = await mesh.token({ sub: 'sam', team: 'support' });
  });

  after(async () => {
    await mesh?.stop();
    await upstream?.close();
    rmSync(state, { recursive: true, force: true });
  });

  /** What a client reading the answer sees (fetch decompresses and strips a BOM as clients do). */
  async function list(variant: string): Promise<{ status: number; text: string }> {
    const res = await fetch(mesh.endpoints.mcp, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'gzip', 'mcp-session-id': 'awkward-1', 'x-variant': variant },
      body: listRequest,
    });
    return { status: res.status, text: await res.text() };
  }

  const refusedAsUnfilterable = (r: { status: number; text: string }, why: RegExp): void => {
    assert.equal(r.status, 502, r.text.slice(0, 300));
    const err = JSON.parse(r.text) as { id: number; error: { code: number; message: string } };
    assert.equal(err.id, 11, 'answers the list request by its id');
    assert.equal(err.error.code, -32006);
    assert.match(err.error.message, /could not be filtered by policy/);
    assert.match(err.error.message, why);
  };

  const noHidden = (text: string): void => { for (const t of HIDDEN) assert.ok(!text.includes(t), `${t} leaked: ${text.slice(0, 200)}`); };

  it('a plain answer is filtered (the control)', async () => {
    const r = await list('plain');
    assert.equal(r.status, 200);
    assert.deepEqual((JSON.parse(r.text) as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name), ['search_docs', 'get_customer', 'create_ticket']);
  });

  it('asks the server for an uncompressed answer, and withholds one compressed anyway', async () => {
    const r = await list('gzip');
    refusedAsUnfilterable(r, /content-encoding "gzip"/);
    noHidden(r.text);
    assert.ok(upstream.acceptEncodings.length > 0 && upstream.acceptEncodings.every((a) => a === null), `Check strips accept-encoding: ${JSON.stringify(upstream.acceptEncodings)}`);
  });

  it('filters a BOM-prefixed answer, JSON or SSE, as clients read it', async () => {
    for (const v of ['bom', 'sse-bom']) {
      const r = await list(v);
      assert.equal(r.status, 200);
      noHidden(r.text);
      assert.match(r.text, /search_docs/);
    }
  });

  it('withholds an answer that is neither JSON nor SSE', async () => {
    const r = await list('text');
    refusedAsUnfilterable(r, /neither JSON nor SSE/);
    noHidden(r.text);
  });

  it('withholds a list over 8 MiB instead of passing it unfiltered', async () => {
    const r = await list('huge');
    assert.equal(r.status, 200, 'the headers were on their way; the body is the error');
    const err = JSON.parse(r.text) as { id: number; error: { code: number; message: string } };
    assert.equal(err.id, 11);
    assert.match(err.error.message, /could not be filtered by policy \(it is larger than 8388608 bytes\)/);
    noHidden(r.text);
  });

  it('filters a list replayed on a resumed GET stream (Last-Event-ID)', async () => {
    const res = await fetch(mesh.endpoints.mcp, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': 'awkward-1', 'last-event-id': '41' } });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    noHidden(text);
    assert.match(text, /^id: 41-1\ndata: .*search_docs.*create_ticket/);
  });
});

/**
 * Two authz replicas behind one Envoy, balanced round robin: a Check and the ext_proc stream of
 * the same request land on different replicas. The second replica holds no decision for the
 * request, so it must refuse it (never pass the answer on unfiltered and uncharged).
 */
describe('an ext_proc stream on another replica than its Check, end to end', function () {
  this.timeout(120_000);
  let state: string;
  let mesh: LocalMesh;
  let second: ManagedProcess;
  let envoy: RunningEnvoy;
  let upstream: AwkwardServer;
  let mcp = '';

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-replicas-e2e-'));
    upstream = await new AwkwardServer().start();
    // Plaintext authz, as two replicas of a shared in-cluster authz reached without mesh certs here.
    mesh = await LocalMesh.start({ policies: 'policies', stateDir: join(state, 'a'), ports: PORTS, echo, authzTls: false });
    const port = await freePort();
    const self = selfCommand();
    second = await ManagedProcess.start('authz-b', self.cmd, [...self.args,
      'authz', '--listen', `127.0.0.1:${port}`, '--policies', resolve('policies'), '--issuer', mesh.endpoints.issuer,
      '--audience', mesh.audience, '--server', 'demo', '--namespace', 'default', '--resource-metadata', mesh.endpoints.resourceMetadata,
      '--state', join(state, 'b'), '--metrics-listen', `127.0.0.1:${await freePort()}`,
    ], { readyPattern: /authz listening on[\s\S]*"policy loaded"|"policy loaded"[\s\S]*authz listening on/, echo, timeoutMs: 90_000, cwd: projectRoot() });
    const [, authzPortA] = mesh.endpoints.authz.split(':');
    const envoyPort = await freePort();
    const adminPort = await freePort();
    const config = staticBootstrap({
      nodeId: 'default/demo-2', server: 'demo', namespace: 'default', listen: { host: '127.0.0.1', port: envoyPort }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: upstream.port }, authz: { host: '127.0.0.1', port: Number(authzPortA), timeoutMs: 1000 },
      maxRequestBytes: 1024 * 1024, resourceMetadata: { resource: mesh.audience }, extProc: true,
    }, adminPort);
    // Both replicas in the authz cluster, round robin: what a shared authz Service looks like to Envoy.
    const clusters = (config.static_resources as { clusters: Array<Record<string, unknown>> }).clusters;
    const authz = clusters.find((c) => c.name === AUTHZ_CLUSTER)!;
    authz.lb_policy = 'ROUND_ROBIN';
    authz.load_assignment = {
      cluster_name: AUTHZ_CLUSTER,
      endpoints: [{ lb_endpoints: [authzPortA, port].map((p) => ({ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: Number(p) } } } })) }],
    };
    envoy = await startEnvoy({ config, adminPort, echo });
    await waitForPort(envoyPort);
    mcp = `http://127.0.0.1:${envoyPort}/mcp`;
  });

  after(async () => {
    await envoy?.stop().catch(() => undefined);
    await second?.stop().catch(() => undefined);
    await mesh?.stop();
    await upstream?.close();
    rmSync(state, { recursive: true, force: true });
  });

  it('refuses the calls whose answer could not be filtered or charged; no list passes unfiltered', async () => {
    const token = await mesh.token({ sub: 'sam', team: 'support' });
    // This server answers every tools/list with its whole catalogue, session or not.
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    let refused = 0;
    let filtered = 0;
    const refusedIds: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(mcp, { method: 'POST', headers, body: listRequest });
      const text = await res.text();
      for (const t of HIDDEN) assert.ok(!text.includes(t), `${t} leaked through another replica: ${text.slice(0, 300)}`);
      if (res.status === 503 && /different authz replicas/.test(text)) {
        refused++;
        const m = /decision ([0-9a-f-]{36})/.exec(text);
        if (m) refusedIds.push(m[1]!);
      } else {
        assert.equal(res.status, 200, text.slice(0, 300));
        assert.match(text, /search_docs/);
        filtered++;
      }
    }
    assert.ok(refused > 0, 'round robin put a Check and its ext_proc stream on different replicas at least once');
    assert.equal(refused + filtered, 8);
    for (const id of refusedIds) assert.ok(!upstream.seen.some((r) => r.decisionId === id), 'a refused request never reached the server');
  });
});
