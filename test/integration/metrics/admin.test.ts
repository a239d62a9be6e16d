import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createStatusCommand } from '../../../src/cli/status.js';
import { createAuthzMetrics, type AuthzMetrics } from '../../../src/metrics/authz-metrics.js';
import { AdminHttpServer } from '../../../src/metrics/http.js';
import { createStatusProvider, type StatusDoc } from '../../../src/metrics/status.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { DirBundleSource } from '../../../src/policy/sources/dir.js';
import { freePort } from '../../../src/util/net.js';
import { parseExposition, valueOf } from '../../unit/metrics/exposition.js';

const GOOD_POLICY = 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.mcp.tool == "search_docs"\n';
const BROKEN_POLICY = 'package tollgate.authz\n\nallow if {\n';

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function http(url: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const cmd = createStatusCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
  const code = await cmd.run(argv);
  return { code, out, err };
}

describe('authz admin endpoints and `tollgate status`', function () {
  this.timeout(60_000);
  let dir: string;
  let holder: PolicyHolder;
  let source: DirBundleSource;
  let metrics: AuthzMetrics;
  let admin: AdminHttpServer;
  let grpcUp = false;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-admin-'));
    // authz starts on a policy that does not build: it must come up, refuse calls, and say why.
    writeFileSync(join(dir, 'authz.rego'), BROKEN_POLICY);
    holder = new PolicyHolder();
    source = new DirBundleSource({ holder, dir });
    metrics = createAuthzMetrics(new Registry(), { servers: ['default'], version: '0.1.0-test' });
    metrics.readFrom({ policy: () => source.status() });
    const provider = createStatusProvider({
      instanceId: 'authz-test', version: '0.1.0-test',
      grpc: () => ({ listen: '127.0.0.1:9191', up: grpcUp }),
      policy: () => source.status(),
      budgets: () => ({
        mode: 'local', budgets: [{ name: 'payments-daily', limit: 300_000, window: 'day', action: 'deny' }],
        metrics: { chargedTokens: new Map([['payments-daily', 1_500]]), denials: new Map() },
        remaining: () => metrics.budgetRemaining(),
      }),
    });
    admin = await AdminHttpServer.start({ host: '127.0.0.1', port: 0, registry: metrics.registry, status: provider.status, ready: provider.readiness });
    await source.start();
  });

  after(async () => {
    await admin?.close();
    await source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is alive but not ready while no policy is loaded and gRPC is down, and says why', async () => {
    assert.equal(holder.get(), null);
    const live = await http(`${admin.url}/healthz`);
    assert.equal(live.status, 200);

    const ready = await http(`${admin.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.body, /no policy loaded yet, every call is refused \(fail closed\): policy build of directory .* failed/);
    assert.match(ready.body, /gRPC server on 127\.0\.0\.1:9191 is not accepting calls/);

    const { code, out } = await cli(['--authz', admin.url]);
    assert.equal(code, 1);
    assert.match(out, /^authz authz-test \(tollgate 0\.1\.0-test\) at http:\/\/127\.0\.0\.1:\d+: NOT READY/);
    assert.match(out, /policy {5}NONE LOADED from dir: every call is refused \(fail closed\); 1 rejected since start/);
    assert.match(out, /last rejection .*: policy build of directory .* failed, keeping revision \(none\): [^\n]*\n\s+\S*authz\.rego:4:0: rego_parse_error/);
    assert.match(out, /What to check:\n {2}- the policy directory \(--policies\) compiles: opa check DIR/);
    assert.match(out, /gRPC server is still starting/);
  });

  it('turns ready once a policy loads and gRPC is up, and exposes the revision', async () => {
    writeFileSync(join(dir, 'authz.rego'), GOOD_POLICY);
    const outcome = await source.reload();
    assert.equal(outcome.ok, true);
    grpcUp = true;
    const revision = holder.get()!.revision;

    const ready = await http(`${admin.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body, 'ready\n');

    const scrape = await http(`${admin.url}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const expo = parseExposition(scrape.body);
    assert.equal(valueOf(expo, 'tollgate_policy_revision_info', { revision }), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_loaded'), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_bundle_rejections_total'), 1);

    const { code, out } = await cli(['--authz', admin.url]);
    assert.equal(code, 0, out);
    assert.match(out, /: READY, up /);
    assert.match(out, new RegExp(`policy {5}revision ${revision} from dir, loaded .* ago\\); 1 loaded, 1 rejected since start`));
    assert.doesNotMatch(out, /What to check/);
  });

  it('shows a rejected bundle (metric and status) while the last good policy keeps serving', async () => {
    const revision = holder.get()!.revision;
    writeFileSync(join(dir, 'authz.rego'), BROKEN_POLICY);
    const outcome = await source.reload();
    assert.equal(outcome.ok, false);
    assert.equal(holder.get()!.revision, revision);

    const expo = parseExposition((await http(`${admin.url}/metrics`)).body);
    assert.equal(valueOf(expo, 'tollgate_policy_bundle_rejections_total'), 2);
    assert.equal(valueOf(expo, 'tollgate_policy_revision_info', { revision }), 1);
    const rejectedAt = valueOf(expo, 'tollgate_policy_last_rejection_timestamp_seconds')!;
    assert.ok(rejectedAt >= valueOf(expo, 'tollgate_policy_last_load_timestamp_seconds')!, 'the rejection is the newest policy event');

    const { code, out } = await cli(['--authz', admin.url]);
    assert.equal(code, 0, 'the old policy still serves, so authz stays ready');
    assert.match(out, new RegExp(`revision ${revision} from dir, .*2 rejected since start`));
    assert.match(out, new RegExp(`last rejection .*: policy build of directory .* failed, keeping revision ${revision}: [^\\n]*\\n\\s+\\S*authz\\.rego:4:0: rego_parse_error`));
    assert.match(out, new RegExp(`What to check:\\n  - the newest policy bundle was refused and revision ${revision} still serves`));
  });

  it('serves /status as JSON, and the CLI prints it with --json', async () => {
    metrics.recordBudgetStanding([{ name: 'payments-daily', limit: 300_000, remaining: 280_000, resets_at: new Date(Date.now() + 3_600_000).toISOString() }]);
    const res = await http(`${admin.url}/status`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const doc = JSON.parse(res.body) as StatusDoc;
    assert.equal(doc.instance, 'authz-test');
    assert.equal(doc.policy.rejections, 2);
    assert.equal(doc.budgets?.budgets[0]?.remaining, 280_000);

    const { code, out } = await cli(['--authz', `${admin.url}/`, '--json']);
    assert.equal(code, 0);
    const printed = JSON.parse(out) as StatusDoc;
    assert.equal(printed.policy.revision, holder.get()!.revision);
    assert.equal(printed.ready, true);

    const human = await cli(['--authz', admin.url]);
    assert.match(human.out, /budgets {4}1 budget, local state/);
    assert.match(human.out, /BUDGET {10}WINDOW {2}ACTION {2}LIMIT {4}REMAINING {2}CHARGED {2}DENIED\n {13}payments-daily {2}day {5}deny {4}300,000 {2}280,000 {4}1,500 {4}0/);
    assert.match(human.out, /decisions {2}decision log OFF/);
  });

  it('answers 404 for unknown paths and 405 for anything but GET/HEAD', async () => {
    const missing = await http(`${admin.url}/nope`);
    assert.equal(missing.status, 404);
    assert.match(missing.body, /try \/metrics, \/healthz, \/readyz, \/status/);
    const post = await http(`${admin.url}/metrics`, 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const head = await http(`${admin.url}/healthz`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('accepts a bare boolean for readiness', async () => {
    const other = await AdminHttpServer.start({ port: 0, registry: new Registry(), status: () => { throw new Error('unused'); }, ready: () => false });
    try {
      const r = await http(`${other.url}/readyz`);
      assert.equal(r.status, 503);
      assert.equal(r.body, 'not ready:\n- not ready\n');
      const s = await http(`${other.url}/status`);
      assert.equal(s.status, 500);
    } finally {
      await other.close();
    }
  });

  it('`tollgate status` exits 1 with what to check when nothing answers', async () => {
    const port = await freePort();
    const { code, out, err } = await cli(['--authz', `http://127.0.0.1:${port}`]);
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.match(err, new RegExp(`^tollgate status: cannot reach the authz admin endpoint at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.match(err, /metrics_listen/);
  });

  it('`tollgate status` refuses a non-HTTP address as a usage error', async () => {
    await assert.rejects(cli(['--authz', 'nats://127.0.0.1:4222']), /--authz must be an http:\/\/ URL/);
  });
});
