import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalMesh } from '../../../src/mesh/local.js';
import { rawPost } from '../../support/mcp-client.js';
import { OtelCollector, attrOf, type CollectedSpan } from '../../support/otel-collector.js';

const AUTHZ_SERVICE = 'tollgate-authz';
const ENVOY_SERVICE = 'tollgate-envoy default/demo';
const FIRST_TRACE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

/**
 * Issue 16: one trace across the sidecar and authz. The control plane gives Envoy an
 * OpenTelemetry tracer over xDS (`controlplane serve --otel-collector`); authz exports its MCP
 * span to the same real collector, as a child of Envoy's ext_authz span.
 */
describe('Envoy and authz spans in one trace, in a real OpenTelemetry Collector', function () {
  this.timeout(180_000);
  let collector: OtelCollector;
  let mesh: LocalMesh;
  let state: string;
  const saved = { delay: process.env.OTEL_BSP_SCHEDULE_DELAY, detectors: process.env.OTEL_NODE_RESOURCE_DETECTORS };

  before(async () => {
    collector = await OtelCollector.start();
    state = mkdtempSync(join(tmpdir(), 'tollgate-trace-'));
    // authz inherits these: export within a fraction of a second, no host detectors.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    process.env.OTEL_NODE_RESOURCE_DETECTORS = 'none';
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state, controlPlane: true, otelCollector: collector.grpc,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0, xds: 0, nats: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    await mesh?.stop();
    await collector?.stop();
    rmSync(state, { recursive: true, force: true });
    for (const [k, v] of [['OTEL_BSP_SCHEDULE_DELAY', saved.delay], ['OTEL_NODE_RESOURCE_DETECTORS', saved.detectors]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  async function call(tool: string, headers: Record<string, string>): Promise<{ status: number; json: unknown }> {
    const token = await mesh.token({ sub: 'alice', team: 'payments' });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: tool, arguments: { query: 'refund', table: 'invoices', where: 'true' } } });
    return rawPost(mesh.endpoints.mcp, body, {
      authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers,
    });
  }

  const inTrace = (traceId: string) => (c: OtelCollector): CollectedSpan[] | null => {
    const spans = c.spans().filter((s) => s.traceId === traceId);
    return spans.some((s) => s.service === AUTHZ_SERVICE) && spans.some((s) => s.service === ENVOY_SERVICE && s.kind === 2) && spans.length >= 3 ? spans : null;
  };

  it('continues the client\'s traceparent: Envoy\'s server span, its ext_authz span, and authz\'s MCP span as that span\'s child', async () => {
    const traceId = FIRST_TRACE;
    const clientSpan = '1111111111111111';
    const res = await call('delete_records', { traceparent: `00-${traceId}-${clientSpan}-01` });
    assert.equal(res.status, 200); // a JSON-RPC error body: the policy denied it
    const spans = await collector.waitFor(`Envoy's and authz's spans in trace ${traceId}`, inTrace(traceId), 30_000);

    const authz = spans.find((s) => s.service === AUTHZ_SERVICE)!;
    const ingress = spans.find((s) => s.service === ENVOY_SERVICE && s.kind === 2)!;
    assert.equal(ingress.parentSpanId, clientSpan, 'Envoy continues the client\'s trace');
    assert.equal(attrOf(ingress.attributes, 'tollgate.server'), 'demo');

    assert.equal(authz.name, 'tools/call delete_records');
    assert.equal(attrOf(authz.attributes, 'mcp.method.name'), 'tools/call');
    assert.equal(attrOf(authz.attributes, 'gen_ai.tool.name'), 'delete_records');
    assert.equal(attrOf(authz.attributes, 'jsonrpc.request.id'), '41');
    assert.equal(attrOf(authz.attributes, 'mcp.protocol.version'), '2025-06-18');
    assert.equal(attrOf(authz.attributes, 'tollgate.decision'), 'deny');
    assert.equal(attrOf(authz.attributes, 'error.type'), '-32003');
    assert.equal(attrOf(authz.attributes, 'tollgate.trace_parent'), 'call');
    // authz's parent is an Envoy span of this trace (the ext_authz client span), itself under the ingress span.
    const parent = spans.find((s) => s.spanId === authz.parentSpanId);
    assert.ok(parent, `authz's parent ${authz.parentSpanId} is not among the trace's spans: ${spans.map((s) => `${s.service}:${s.name}:${s.spanId}`).join(', ')}`);
    assert.equal(parent.service, ENVOY_SERVICE);
    assert.equal(parent.kind, 3, `authz's parent is Envoy's CLIENT span of the Check call (${parent.name})`);
    assert.match(parent.name, /ext_authz|Authorization|tollgate_authz/i);
    assert.equal(parent.parentSpanId, ingress.spanId);
  });

  it('starts the trace in Envoy when the client sends none, and authz joins it', async () => {
    // A denied call: authz answers it itself, so the trace needs nothing from the upstream.
    const res = await call('delete_records', {});
    assert.equal(res.status, 200);
    const authz = await collector.waitFor('authz span of the second call', (c) => c.spans().find((s) => s.service === AUTHZ_SERVICE && s.traceId !== FIRST_TRACE));
    const spans = await collector.waitFor(`Envoy's spans in trace ${authz.traceId}`, inTrace(authz.traceId), 30_000);
    const ingress = spans.find((s) => s.service === ENVOY_SERVICE && s.kind === 2)!;
    assert.equal(ingress.parentSpanId ?? '', '', 'Envoy\'s span is the root');
    assert.equal(authz.name, 'tools/call delete_records');
    assert.ok(spans.some((s) => s.spanId === authz.parentSpanId && s.service === ENVOY_SERVICE));
  });
});
