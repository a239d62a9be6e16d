import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkStatusDoc, createStatusCommand } from '../../../src/cli/status.js';
import { createStatusProvider } from '../../../src/metrics/status.js';
import { writeMeshFile } from '../../../src/mesh/mesh-file.js';

/** A status document as a current authz serves it, to break one field at a time. */
function goodDoc(): Record<string, unknown> {
  const doc = createStatusProvider({
    instanceId: 'authz-1', version: '0.1.0', grpc: () => ({ listen: '127.0.0.1:9191', up: true }),
    policy: () => ({ kind: 'dir', revision: '3', loadedAt: '2025-03-10T15:00:30.000Z', swaps: 1, rejections: 0, lastError: null, sourceError: null }),
  }).status();
  return JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
}

/** `tollgate status` against an admin endpoint that answers GET /status with a fixed body. */
describe('tollgate status: the document it reads', () => {
  let server: Server;
  let url: string;
  let body = '';

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/status') res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function status(doc: unknown, ...flags: string[]): Promise<{ code: number; out: string; err: string }> {
    body = JSON.stringify(doc);
    let out = '';
    let err = '';
    const cmd = createStatusCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => Date.parse('2025-03-10T16:00:00Z') });
    const code = await cmd.run(['--authz', url, ...flags]);
    return { code, out, err };
  }

  it('prints a document of this version', async () => {
    const r = await status(goodDoc());
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^authz authz-1 \(tollgate 0\.1\.0\) at http:\/\/127\.0\.0\.1:\d+: READY/);
    assert.match(r.out, /revision 3 from dir/);
  });

  it('a partial tollgate.status/v1 document is version skew, named field by field, not a crash', async () => {
    const r = await status({ schema: 'tollgate.status/v1', ready: true, policy: {}, notReady: [] });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.match(r.err, /^tollgate status: http:\/\/127\.0\.0\.1:\d+\/status is not a tollgate\.status\/v1 document \(version skew\?\): instance: is missing; version: is missing; startedAt: is missing \(and \d+ more\)/);
    assert.doesNotMatch(r.err, /Cannot read properties/);
  });

  it('refuses a null reason, a missing gRPC section and a mistyped field, saying which', async () => {
    const nullReason = { ...goodDoc(), ready: false, notReady: [null] };
    let r = await status(nullReason);
    assert.equal(r.code, 1);
    assert.match(r.err, /\(version skew\?\): notReady\[0\]: must be a string, got null\. Use a tollgate of the same version as that authz\n$/);

    const { grpc: _grpc, ...noGrpc } = goodDoc();
    r = await status(noGrpc);
    assert.match(r.err, /\(version skew\?\): grpc: is missing\./);

    const doc = goodDoc();
    r = await status({ ...doc, policy: { ...(doc.policy as object), swaps: 'two' } });
    assert.match(r.err, /\(version skew\?\): policy\.swaps: must be a number, got "two"\./);

    r = await status({ ...doc, budgets: { mode: 'local', budgets: [{ name: 'b' }] } });
    assert.match(r.err, /\(version skew\?\): budgets\.budgets\[0\]\.window: is missing; budgets\.budgets\[0\]\.action: is missing/);
  });

  it('something that is no status document at all is still "is this a Tollgate authz address?"', async () => {
    const r = await status({ hello: 'world' });
    assert.equal(r.code, 1);
    assert.match(r.err, /is not a tollgate\.status\/v1 document: is this a Tollgate authz admin address/);
    assert.match(r.err, /metrics_listen/);
  });

  it('--json prints the document as received, fields of a newer authz included', async () => {
    const r = await status({ ...goodDoc(), newField: { x: 1 } }, '--json');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual((JSON.parse(r.out) as { newField: unknown }).newField, { x: 1 });
  });

  it('checkStatusDoc: the schema the server builds from, all of it', () => {
    const ok = checkStatusDoc(goodDoc());
    assert.ok('doc' in ok);
    const bad = checkStatusDoc({ ...goodDoc(), decisionLog: { dir: '/d' } });
    assert.ok('problem' in bad && bad.claimed);
    assert.match(bad.problem, /^decisionLog\.file: is missing; decisionLog\.seq: is missing; decisionLog\.records: is missing \(and \d+ more\)$/);
    const other = checkStatusDoc([]);
    assert.ok('problem' in other && !other.claimed);
  });
});

/** `tollgate status --state DIR` for a mesh whose file names an Envoy admin: authz ready is not enough. */
describe('tollgate status: the mesh\'s Envoy', () => {
  let authz: Server;
  let envoy: Server;
  let envoyAnswer: { status: number; body: string } = { status: 200, body: 'LIVE\n' };
  let state: string;
  let envoyAdmin: string;

  const listen = async (s: Server): Promise<string> => {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  };
  const close = async (s: Server): Promise<void> => {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  };

  before(async () => {
    authz = createServer((req, res) => {
      if (req.url === '/status') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(goodDoc()));
      else res.writeHead(404).end();
    });
    envoy = createServer((req, res) => {
      if (req.url === '/ready') res.writeHead(envoyAnswer.status).end(envoyAnswer.body);
      else res.writeHead(404).end();
    });
    const authzAdmin = await listen(authz);
    envoyAdmin = await listen(envoy);
    state = mkdtempSync(join(tmpdir(), 'tg-status-'));
    writeMeshFile({
      schema: 'tollgate.mesh/v1', pid: process.pid, startedAt: '2025-03-10T15:00:00.000Z', stateDir: state, policies: '/p', budgets: null,
      audience: 'http://127.0.0.1:1/mcp', decisions: join(state, 'decisions'), natsCredentials: {},
      endpoints: { mcp: 'http://127.0.0.1:1/mcp', issuer: 'http://127.0.0.1:2', authz: '127.0.0.1:3', authzAdmin, envoyAdmin, xds: null, nats: null, controlPlaneAdmin: null },
    });
  });
  after(async () => {
    await close(authz);
    if (envoy.listening) await close(envoy);
    rmSync(state, { recursive: true, force: true });
  });

  async function status(...flags: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const cmd = createStatusCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => Date.parse('2025-03-10T16:00:00Z') });
    const code = await cmd.run(['--state', state, '--timeout', '2s', ...flags]);
    return { code, out, err };
  }

  it('is READY only with Envoy LIVE', async () => {
    envoyAnswer = { status: 200, body: 'LIVE\n' };
    const r = await status();
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /: READY/);
    assert.match(r.out, new RegExp(`\\n  envoy +${envoyAdmin.replace(/[.]/g, '\\.')}: LIVE\\n`));
  });

  it('reports an Envoy that is not live as NOT READY, with what /ready said', async () => {
    envoyAnswer = { status: 503, body: 'PRE_INITIALIZING\n' };
    const r = await status();
    assert.equal(r.code, 1);
    assert.match(r.out, /envoy +http:\S+: NOT READY: http:\S+\/ready answered HTTP 503 "PRE_INITIALIZING"/);
    assert.match(r.out, /What to check:\n[\s\S]*Envoy, the governed MCP endpoint/);
    const j = await status('--json');
    assert.equal(j.code, 1);
    assert.deepEqual((JSON.parse(j.out) as { envoy: unknown }).envoy, { admin: envoyAdmin, ready: false, problem: `${envoyAdmin}/ready answered HTTP 503 "PRE_INITIALIZING"` });
  });

  it('reports an Envoy that is gone (authz still ready) as NOT READY, and exits 1', async () => {
    await close(envoy);
    const r = await status();
    assert.equal(r.code, 1);
    assert.match(r.out, /authz authz-1 .*: READY/);
    assert.match(r.out, /envoy +http:\S+: NOT READY: cannot reach Envoy's admin endpoint \(ECONNREFUSED\): Envoy is down or hung/);
  });
});
