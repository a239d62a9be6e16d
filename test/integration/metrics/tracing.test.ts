import { strict as assert } from 'node:assert';
import { CheckTracer, type CheckSpanFacts } from '../../../src/telemetry/check-span.js';
import { startTracing, type Tracing } from '../../../src/telemetry/tracing.js';
import { OtelCollector, attrOf, type CollectedSpan } from '../../support/otel-collector.js';

const ENV_KEYS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_TRACES_EXPORTER', 'OTEL_SERVICE_NAME', 'OTEL_NODE_RESOURCE_DETECTORS', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SDK_DISABLED'] as const;

const attr = (s: CollectedSpan, key: string): string | undefined => attrOf(s.attributes, key);

function facts(over: Partial<CheckSpanFacts>): CheckSpanFacts {
  return {
    decisionId: 'd', allow: true, reasonClass: 'policy', server: 'billing', team: 'payments',
    message: { id: 7, method: 'tools/call', params: { name: 'search_docs' } }, facts: { tool: 'search_docs', prompt: null, resource: null },
    code: null, error: null, ...over,
  };
}

/** MCP-convention Check spans exported over OTLP to a real OpenTelemetry Collector process. */
describe('Check tracing into a real OpenTelemetry Collector', function () {
  this.timeout(60_000);
  let collector: OtelCollector;
  let tracing: Tracing | null = null;
  const saved = new Map<string, string | undefined>();

  before(async () => {
    for (const k of ENV_KEYS) saved.set(k, process.env[k]);
    collector = await OtelCollector.start();
  });

  afterEach(async () => {
    await tracing?.shutdown();
    tracing = null;
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  after(() => collector?.stop());

  it('is a no-op without OTEL_* configuration', async () => {
    for (const k of ENV_KEYS) delete process.env[k];
    tracing = await startTracing({ serviceName: 'tollgate-authz' });
    assert.equal(tracing.enabled, false);
    assert.equal(tracing.checks.enabled, false);
    tracing.checks.record({ headers: {} }, facts({}), 1000);
    assert.equal(CheckTracer.disabled.enabled, false);
  });

  for (const protocol of ['grpc', 'http/protobuf'] as const) {
    it(`names spans and attributes as the MCP conventions say, and picks the parent by precedence (OTLP ${protocol})`, async () => {
      for (const k of ENV_KEYS) delete process.env[k];
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = protocol === 'grpc' ? `http://${collector.grpc}` : collector.http;
      process.env.OTEL_EXPORTER_OTLP_PROTOCOL = protocol;
      process.env.OTEL_NODE_RESOURCE_DETECTORS = 'none';
      tracing = await startTracing({ serviceName: 'tollgate-authz', version: '0.1.0-test' });
      assert.equal(tracing.enabled, true);
      const tag = protocol.replace('/', '-');

      const clientTrace = '0af7651916cd43dd8448eb211c80319c';
      const clientSpan = 'b7ad6b7169203331';
      const envoyTrace = '0af7651916cd43dd8448eb211c80319c';
      const envoySpan = 'c8be7c827a314442';
      const metaTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const metaSpan = '00f067aa0ba902b7';
      const headers = { traceparent: `00-${clientTrace}-${clientSpan}-01`, 'mcp-session-id': 'sess-1', 'mcp-protocol-version': '2025-06-18' };
      const call = { traceparent: `00-${envoyTrace}-${envoySpan}-01` };

      // 1. Denied tools/call with context in params._meta: _meta is the parent, Envoy's span a link.
      tracing.checks.record({ headers, call }, facts({
        decisionId: `${tag}-meta`, allow: false, code: -32003, error: 'Tollgate denied this call: destructive',
        message: { id: 'req-7', method: 'tools/call', params: { name: 'delete_records', _meta: { traceparent: `00-${metaTrace}-${metaSpan}-01`, tracestate: 'rojo=00f067aa0ba902b7' } } },
        facts: { tool: 'delete_records', prompt: null, resource: null },
      }), 2_000_000);
      // 2. No _meta: the Check call's gRPC metadata (Envoy's ext_authz span) is the parent.
      tracing.checks.record({ headers, call }, facts({ decisionId: `${tag}-call`, message: { id: 1, method: 'prompts/get', params: { name: 'summarize' } }, facts: { tool: null, prompt: 'summarize', resource: null } }), 50_000);
      // 3. Only the HTTP header: it is the parent.
      tracing.checks.record({ headers }, facts({ decisionId: `${tag}-http`, message: { id: null, method: 'notifications/initialized', params: null }, facts: { tool: null, prompt: null, resource: null } }), 50_000);
      // 4. A malformed _meta traceparent is ignored, as is a header without context: a new trace.
      tracing.checks.record({ headers: {} }, facts({ decisionId: `${tag}-none`, message: { id: 2, method: 'initialize', params: { protocolVersion: '2025-11-25', _meta: { traceparent: '00-zz-not-a-context' } } }, facts: { tool: null, prompt: null, resource: null } }), 50_000);
      // 5. Refused before any message was read.
      tracing.checks.record({ headers }, facts({ decisionId: `${tag}-nomsg`, allow: false, reasonClass: 'auth', code: -32001, error: 'missing bearer token', message: null, facts: null, team: null }), 50_000);
      await tracing.shutdown();
      tracing = null;

      const spans = await collector.waitFor('five Check spans', (c) => {
        const mine = c.spans().filter((s) => (attr(s, 'tollgate.decision_id') ?? '').startsWith(`${tag}-`));
        return mine.length >= 5 ? mine : null;
      });
      const byId = (id: string): CollectedSpan => spans.find((s) => attr(s, 'tollgate.decision_id') === `${tag}-${id}`)!;

      const meta = byId('meta');
      assert.equal(meta.name, 'tools/call delete_records');
      assert.equal(meta.kind, 2); // SERVER
      assert.equal(meta.service, 'tollgate-authz');
      assert.equal(meta.traceId, metaTrace);
      assert.equal(meta.parentSpanId, metaSpan);
      assert.deepEqual(meta.links?.map((l) => [l.traceId, l.spanId]), [[envoyTrace, envoySpan]]);
      assert.equal(attr(meta, 'mcp.method.name'), 'tools/call');
      assert.equal(attr(meta, 'gen_ai.tool.name'), 'delete_records');
      assert.equal(attr(meta, 'gen_ai.operation.name'), 'execute_tool');
      assert.equal(attr(meta, 'jsonrpc.request.id'), 'req-7');
      assert.equal(attr(meta, 'mcp.session.id'), 'sess-1');
      assert.equal(attr(meta, 'mcp.protocol.version'), '2025-06-18');
      assert.equal(attr(meta, 'error.type'), '-32003');
      assert.equal(attr(meta, 'rpc.response.status_code'), '-32003');
      assert.equal(attr(meta, 'network.transport'), 'tcp');
      assert.equal(attr(meta, 'tollgate.server'), 'billing');
      assert.equal(attr(meta, 'tollgate.team'), 'payments');
      assert.equal(attr(meta, 'tollgate.decision'), 'deny');
      assert.equal(attr(meta, 'tollgate.reason_class'), 'policy');
      assert.equal(attr(meta, 'tollgate.trace_parent'), 'meta');
      assert.equal(meta.status?.code, 2); // ERROR, as the conventions ask when error.type is set
      assert.equal(meta.status?.message, 'Tollgate denied this call: destructive');
      const nanos = BigInt(meta.endTimeUnixNano) - BigInt(meta.startTimeUnixNano);
      assert.ok(nanos > 1_900_000n && nanos < 2_100_000n, `duration ${nanos} ns`);

      const viaCall = byId('call');
      assert.equal(viaCall.name, 'prompts/get summarize');
      assert.equal(attr(viaCall, 'gen_ai.prompt.name'), 'summarize');
      assert.equal(viaCall.traceId, envoyTrace);
      assert.equal(viaCall.parentSpanId, envoySpan);
      assert.equal(attr(viaCall, 'tollgate.trace_parent'), 'call');
      assert.equal(attr(viaCall, 'error.type'), undefined);
      assert.notEqual(viaCall.status?.code, 2);

      const viaHttp = byId('http');
      assert.equal(viaHttp.name, 'notifications/initialized');
      assert.equal(viaHttp.parentSpanId, clientSpan);
      assert.equal(attr(viaHttp, 'jsonrpc.request.id'), undefined, 'no id for a notification');
      assert.equal(attr(viaHttp, 'tollgate.trace_parent'), 'http');

      const fresh = byId('none');
      assert.equal(fresh.name, 'initialize');
      assert.notEqual(fresh.traceId, metaTrace);
      assert.equal(fresh.parentSpanId ?? '', '');
      assert.equal(attr(fresh, 'mcp.protocol.version'), '2025-11-25', 'from initialize params when no header');
      assert.equal(attr(fresh, 'tollgate.trace_parent'), 'none');

      const nomsg = byId('nomsg');
      assert.equal(nomsg.name, 'tollgate.authz.check');
      assert.equal(attr(nomsg, 'mcp.method.name'), undefined);
      assert.equal(attr(nomsg, 'error.type'), '-32001');
    });
  }
});
