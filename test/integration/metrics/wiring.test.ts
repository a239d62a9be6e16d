import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { defaultConfig } from '../../../src/authz/config.js';
import { startAuthz, type RunningAuthz } from '../../../src/authz/runtime.js';
import { authorizationService } from '../../../src/envoy/protos.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { createStatusCommand } from '../../../src/cli/status.js';
import { parseExposition, valueOf } from '../../unit/metrics/exposition.js';

interface CheckClient extends grpc.Client {
  Check(req: object, cb: (e: grpc.ServiceError | null, r: { status?: { code?: number } }) => void): void;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => { let b = ''; res.setEncoding('utf8'); res.on('data', (c: string) => { b += c; }); res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b })); }).on('error', reject).end();
  });
}

describe('authz runtime: metrics, admin endpoints and `tollgate status` on real Checks', function () {
  this.timeout(90_000);
  let state: string;
  let issuer: DevIssuer;
  let authz: RunningAuthz;
  let client: CheckClient;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tg-wiring-'));
    issuer = await DevIssuer.start({ port: 0, stateDir: state });
    const budgets = join(state, 'budgets.yaml');
    writeFileSync(budgets, 'budgets:\n  - name: payments-daily\n    scope: { team: payments }\n    limit: 100000\n    window: day\n');
    const cfg = defaultConfig();
    cfg.listen = { host: '127.0.0.1', port: 0 };
    cfg.stateDir = state;
    cfg.decisionLogDir = join(state, 'decisions');
    cfg.policy.dir = 'policies';
    cfg.identity.issuer = issuer.url;
    cfg.budgetsFile = budgets;
    cfg.server = { name: 'demo', namespace: 'default' };
    cfg.metricsListen = { host: '127.0.0.1', port: 0 };
    authz = await startAuthz(cfg);
    const Check = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
    client = new Check(`127.0.0.1:${authz.port}`, grpc.credentials.createInsecure()) as unknown as CheckClient;
  });

  after(async () => {
    client?.close();
    await authz?.close();
    await issuer?.close();
    rmSync(state, { recursive: true, force: true });
  });

  function check(token: string | null, tool: string): Promise<number | undefined> {
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { query: 'refund policy' } } }));
    const headers: Record<string, string> = { ':path': '/mcp', ':method': 'POST', 'content-type': 'application/json', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    if (token) headers.authorization = `Bearer ${token}`;
    const req = { attributes: { request: { http: { id: 'r1', method: 'POST', path: '/mcp', host: '127.0.0.1:10000', scheme: 'http', headers, rawBody: body } }, contextExtensions: { server: 'demo', namespace: 'default' } } };
    return new Promise((resolve, reject) => client.Check(req, (e, r) => (e ? reject(e) : resolve(r.status?.code))));
  }

  it('counts real decisions (allow, policy deny, missing token) and reports them on /metrics and /status', async () => {
    const token = await issuer.mint({ sub: 'alice', team: 'payments', audience: 'http://127.0.0.1:10000/mcp', ttlSec: 600 });
    assert.equal(await check(null, 'search_docs'), 16);
    assert.equal(await check(token, 'search_docs'), 0);
    assert.equal(await check(token, 'delete_records'), 7);
    const admin = authz.admin!;
    const expo = parseExposition((await get(`${admin.url}/metrics`)).body);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', { decision: 'allow', reason_class: 'policy', server: 'demo' }), 1);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', { decision: 'deny', reason_class: 'policy', server: 'demo' }), 1);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', { decision: 'deny', reason_class: 'auth', server: 'demo' }), 1);
    assert.equal(valueOf(expo, 'tollgate_auth_failures_total', { failure: 'missing_token' }), 1);
    assert.equal(valueOf(expo, 'tollgate_decision_log_records_total'), 3);
    assert.equal(valueOf(expo, 'tollgate_check_duration_seconds_count'), 3);
    const charged = valueOf(expo, 'tollgate_budget_tokens_charged_total', { budget: 'payments-daily' })!;
    assert.ok(charged > 0);
    assert.equal(valueOf(expo, 'tollgate_budget_remaining_tokens', { budget: 'payments-daily' }), 100_000 - charged);
    assert.equal(valueOf(expo, 'tollgate_policy_revision_info', { revision: authz.holder.get()!.revision }), 1);
    assert.equal((await get(`${admin.url}/readyz`)).status, 200);
    let out = '';
    const code = await createStatusCommand({ out: (s) => { out += s; }, err: (s) => { out += s; }, env: {} }).run(['--authz', admin.url]);
    assert.equal(code, 0, out);
    assert.match(out, /: READY, /);
    assert.match(out, /policy {5}revision local-[0-9a-f]{12} from dir/);
    assert.match(out, /decisions {2}3 records written since start, 0 write errors/);
    assert.match(out, /payments-daily {2}day {5}deny {4}100,000/);
  });
});
