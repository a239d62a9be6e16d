import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalMesh } from '../../../src/mesh/local.js';
import { rawPost } from '../../support/mcp-client.js';
import { checkQuery, scrapeLabels } from '../../support/promql-refs.js';

interface Dashboard {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ name: string; type: string; query?: string }> };
}

const DASHBOARD = 'manifests/grafana/tollgate-dashboard.json';

/** Every query of the Grafana dashboard, parsed with Prometheus's PromQL grammar, against real scrapes. */
describe('Grafana dashboard queries against the metrics a running mesh exposes', function () {
  this.timeout(180_000);
  let mesh: LocalMesh;
  let state: string;
  let series: Map<string, Set<string>>;
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-dash-'));
    const budgets = join(state, 'budgets.yaml');
    writeFileSync(budgets, 'budgets:\n  - { name: payments-daily, scope: { team: payments }, limit: 100000, window: day }\n  - { name: interns-daily, scope: { team: interns }, limit: 1, window: day }\n');
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state, controlPlane: true, budgets,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0, xds: 0, nats: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    // Traffic of each kind, so every labelled series the dashboard reads exists.
    const token = await mesh.token({ sub: 'alice', team: 'payments' });
    const post = (method: string, params: unknown, auth = true) => rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }), {
      accept: 'application/json, text/event-stream', ...(auth ? { authorization: `Bearer ${token}` } : {}),
    });
    await post('tools/call', { name: 'delete_records', arguments: { table: 'invoices', where: 'true' } });
    await post('tools/call', { name: 'search_docs', arguments: { query: 'refund' } });
    await post('tools/list', {}, false);
    // Over the interns' one-token budget: a budget denial.
    const intern = await mesh.token({ sub: 'bob', team: 'interns' });
    await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'search_docs', arguments: { query: 'a long enough question about refunds' } } }), {
      accept: 'application/json, text/event-stream', authorization: `Bearer ${intern}`,
    });
    series = new Map();
    for (const url of [mesh.endpoints.metrics, mesh.endpoints.controlPlaneMetrics!]) {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200, url);
      for (const [name, labels] of scrapeLabels(await res.text())) {
        const all = series.get(name) ?? new Set<string>();
        for (const l of labels) all.add(l);
        series.set(name, all);
      }
    }
  });

  after(async () => {
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('the scrapes hold the new per-call, MCP-convention and control-plane series', () => {
    for (const name of ['tollgate_mcp_calls_total', 'mcp_server_operation_duration_seconds_bucket', 'tollgate_controlplane_builds_total', 'tollgate_controlplane_bundle_revision', 'tollgate_xds_streams']) {
      assert.ok(series.has(name), `${name} missing from the scrapes`);
    }
    assert.deepEqual([...series.get('tollgate_mcp_calls_total')!].sort(), ['decision', 'method', 'server', 'team', 'tool']);
    assert.deepEqual([...series.get('mcp_server_operation_duration_seconds_bucket')!].sort(), ['error_type', 'gen_ai_tool_name', 'le', 'mcp_method_name']);
  });

  it('every panel query parses and names only metrics and labels that exist', () => {
    const problems: string[] = [];
    let n = 0;
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) {
        n++;
        for (const why of checkQuery(t.expr, series)) problems.push(`${p.title}: ${t.expr}\n    ${why}`);
      }
    }
    assert.ok(n >= 20, `only ${n} queries`);
    assert.deepEqual(problems, []);
  });

  it('template variables query existing metrics and labels', () => {
    const queries = dashboard.templating.list.filter((v) => v.type === 'query');
    assert.ok(queries.length > 0);
    for (const v of queries) {
      const m = /^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*), *([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(v.query ?? '');
      assert.ok(m, `variable ${v.name}: ${v.query} is not label_values(metric, label)`);
      assert.ok(series.get(m[1]!)?.has(m[2]!), `variable ${v.name}: ${m[1]} has no label ${m[2]}`);
    }
  });

  it('the check itself catches a misspelt metric, a missing label and a syntax error', () => {
    assert.match(checkQuery('rate(tollgate_decisions_totl[5m])', series).join('\n'), /tollgate_decisions_totl is not in any scrape/);
    assert.match(checkQuery('sum by (servr) (rate(tollgate_decisions_total[5m]))', series).join('\n'), /grouping label servr/);
    assert.match(checkQuery('tollgate_decisions_total{tool="x"}', series).join('\n'), /label tool does not exist/);
    assert.match(checkQuery('sum(rate(tollgate_decisions_total[5m])', series).join('\n'), /syntax error/);
    assert.deepEqual(checkQuery('sum by (server) (rate(tollgate_decisions_total{decision="deny"}[$__rate_interval]))', series), []);
  });
});
