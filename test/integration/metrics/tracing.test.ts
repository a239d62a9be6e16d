import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CheckTracer, finishCheckSpan } from '../../../src/telemetry/check-span.js';
import { startTracing, type Tracing } from '../../../src/telemetry/tracing.js';

/** The parts of an OTLP/JSON span this test reads. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: { stringValue?: string } }>;
  status?: { code?: number; message?: string };
}

interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }>;
  }>;
}

/** A collector stand-in: accepts OTLP/HTTP JSON on POST /v1/traces and keeps what it got. */
class OtlpReceiver {
  readonly exports: OtlpExport[] = [];
  readonly paths: string[] = [];
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(): Promise<OtlpReceiver> {
    let self: OtlpReceiver | null = null;
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        self?.paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
        if (req.method === 'POST' && req.url === '/v1/traces') {
          self?.exports.push(JSON.parse(body) as OtlpExport);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
        } else {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new OtlpReceiver(server, (server.address() as AddressInfo).port);
    return self;
  }

  spans(): Array<OtlpSpan & { service: string | undefined; scope: string }> {
    return this.exports.flatMap((e) => e.resourceSpans.flatMap((rs) => {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
      return rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service, scope: ss.scope.name })));
    }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const attr = (s: OtlpSpan, key: string): string | undefined => s.attributes.find((a) => a.key === key)?.value.stringValue;

const ENV_KEYS = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_TRACES_EXPORTER', 'OTEL_SERVICE_NAME', 'OTEL_NODE_RESOURCE_DETECTORS', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SDK_DISABLED'] as const;

describe('Check tracing over OTLP/HTTP', function () {
  this.timeout(30_000);
  let receiver: OtlpReceiver;
  let tracing: Tracing | null = null;
  const saved = new Map<string, string | undefined>();

  before(async () => {
    for (const k of ENV_KEYS) saved.set(k, process.env[k]);
    receiver = await OtlpReceiver.start();
  });

  afterEach(async () => {
    await tracing?.shutdown();
    tracing = null;
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  after(() => receiver.close());

  it('is a no-op without OTEL_* configuration', async () => {
    for (const k of ENV_KEYS) delete process.env[k];
    tracing = await startTracing({ serviceName: 'tollgate-authz' });
    assert.equal(tracing.enabled, false);
    assert.equal(tracing.checks.enabled, false);
    assert.equal(tracing.checks.start({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }), null);
    tracing.checks.record({}, { decisionId: 'd', allow: true, reasonClass: 'policy', server: 's', method: null, tool: null }, 1000);
    assert.equal(CheckTracer.disabled.enabled, false);
  });

  it('continues the caller\'s W3C trace and sends the decision as span attributes', async () => {
    for (const k of ENV_KEYS) delete process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${receiver.port}`;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_NODE_RESOURCE_DETECTORS = 'none';
    tracing = await startTracing({ serviceName: 'tollgate-authz', version: '0.1.0-test' });
    assert.equal(tracing.enabled, true);
    assert.match(tracing.reason, /OTLP endpoint http:\/\/127\.0\.0\.1:\d+/);

    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const parentId = 'b7ad6b7169203331';
    const headers = { traceparent: `00-${traceId}-${parentId}-01`, ':path': '/mcp', 'content-type': 'application/json' };
    tracing.checks.record(headers, {
      decisionId: '5b0e1c9e-0000-4000-8000-000000000001', allow: false, reasonClass: 'policy', server: 'billing', method: 'tools/call', tool: 'delete_records',
    }, 2_000_000);
    // The two-step form, for a caller that wants the span open while it decides.
    const span = tracing.checks.start(headers)!;
    finishCheckSpan(span, { decisionId: 'd-2', allow: false, reasonClass: 'unavailable', server: 'billing', method: 'initialize', tool: null });
    // A call without trace context starts a trace of its own.
    tracing.checks.record({}, { decisionId: 'd-3', allow: true, reasonClass: 'policy', server: 'billing', method: 'tools/list', tool: null }, 50_000);

    await tracing.shutdown(); // flushes the batch processor
    tracing = null;

    assert.ok(receiver.paths.every((p) => p === 'POST /v1/traces application/json'), receiver.paths.join(', '));
    const spans = receiver.spans();
    assert.equal(spans.length, 3);
    const [denied, failed, fresh] = ['5b0e1c9e-0000-4000-8000-000000000001', 'd-2', 'd-3'].map((id) => spans.find((s) => attr(s, 'tollgate.decision_id') === id)!);

    assert.ok(denied && failed && fresh);
    assert.equal(denied.traceId, traceId);
    assert.equal(denied.parentSpanId, parentId);
    assert.equal(denied.name, 'tollgate.authz.check');
    assert.equal(denied.kind, 2); // SERVER
    assert.equal(denied.service, 'tollgate-authz');
    assert.equal(denied.scope, 'tollgate');
    assert.equal(attr(denied, 'mcp.method'), 'tools/call');
    assert.equal(attr(denied, 'mcp.tool'), 'delete_records');
    assert.equal(attr(denied, 'mcp.server'), 'billing');
    assert.equal(attr(denied, 'tollgate.decision'), 'deny');
    assert.equal(attr(denied, 'tollgate.reason_class'), 'policy');
    assert.equal(attr(denied, 'rpc.method'), 'Check');
    // A policy denial is not an error; the span lasts as long as the Check did.
    assert.notEqual(denied.status?.code, 2);
    const nanos = BigInt(denied.endTimeUnixNano) - BigInt(denied.startTimeUnixNano);
    assert.ok(nanos > 1_900_000n && nanos < 2_100_000n, `duration ${nanos} ns`);

    assert.equal(failed.traceId, traceId);
    assert.equal(attr(failed, 'mcp.tool'), undefined);
    assert.equal(failed.status?.code, 2); // ERROR: authz could not decide

    assert.notEqual(fresh.traceId, traceId);
    assert.match(fresh.traceId, /^[0-9a-f]{32}$/);
    assert.equal(fresh.parentSpanId ?? '', '');
    assert.equal(attr(fresh, 'tollgate.decision'), 'allow');
    assert.equal(attr(fresh, 'tollgate.reason_class'), undefined);
  });
});
