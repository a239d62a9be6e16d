import { strict as assert } from 'node:assert';
import { chooseContext, headerContext, metaContext, validTraceparent } from '../../../src/telemetry/trace-context.js';
import { mcpAttributes, mcpSpanName, MAX_ATTRIBUTE_CHARS } from '../../../src/telemetry/mcp-semconv.js';

const A = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const B = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const C = '00-0af7651916cd43dd8448eb211c80319c-c8be7c827a314442-01';

describe('trace context precedence (params._meta, gRPC call, HTTP header)', () => {
  it('accepts only W3C traceparents with non-zero ids', () => {
    assert.ok(validTraceparent(A));
    for (const bad of [
      '', 'x', A.toUpperCase(), A.replace('-01', '-1'), `${A}-extra`, '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', `ff${A.slice(2)}`, 42, null, 'a'.repeat(100_000),
    ]) assert.equal(validTraceparent(bad), false, String(bad).slice(0, 60));
    // A future version may append fields after a dash.
    assert.ok(validTraceparent(`01${A.slice(2)}-future`));
  });

  it('reads _meta keys unprefixed, ignores anything else there', () => {
    assert.deepEqual(metaContext({ _meta: { traceparent: A, tracestate: 'rojo=1' } }), { traceparent: A, tracestate: 'rojo=1' });
    assert.deepEqual(metaContext({ _meta: { traceparent: A, tracestate: 7 } }), { traceparent: A });
    assert.equal(metaContext({ _meta: { 'io.example/traceparent': A } }), null);
    assert.equal(metaContext({ _meta: [A] }), null);
    assert.equal(metaContext(null), null);
    assert.equal(headerContext({ traceparent: 'garbage' }), null);
  });

  it('_meta first (transport linked), then the Check call, then the HTTP header, else none', () => {
    const meta = { traceparent: A };
    const call = { traceparent: C };
    const http = { traceparent: B };
    assert.deepEqual(chooseContext(meta, call, http), { parent: meta, source: 'meta', link: call });
    assert.deepEqual(chooseContext(meta, null, http), { parent: meta, source: 'meta', link: http });
    assert.deepEqual(chooseContext(meta, null, { traceparent: A }), { parent: meta, source: 'meta', link: null }, 'no link to itself');
    assert.deepEqual(chooseContext(null, call, http), { parent: call, source: 'call', link: null });
    assert.deepEqual(chooseContext(null, null, http), { parent: http, source: 'http', link: null });
    assert.deepEqual(chooseContext(null, null, null), { parent: null, source: 'none', link: null });
  });
});

describe('MCP semantic conventions', () => {
  const base = { method: 'tools/call', tool: 'get_weather', prompt: null, resourceUri: null, requestId: 3, sessionId: null, protocolVersion: null, errorCode: null, errorMessage: null };
  it('names the span {mcp.method.name} {target}, never with a resource URI, and bounds it', () => {
    assert.equal(mcpSpanName(base), 'tools/call get_weather');
    assert.equal(mcpSpanName({ method: 'prompts/get', tool: null, prompt: 'summarize' }), 'prompts/get summarize');
    assert.equal(mcpSpanName({ method: 'resources/read', tool: null, prompt: null }), 'resources/read');
    assert.equal(mcpSpanName({ method: 'tools/call', tool: 'x'.repeat(10_000), prompt: null }).length, MAX_ATTRIBUTE_CHARS);
  });
  it('sets the conventions\' attributes, and error.type only on refusals', () => {
    const a = mcpAttributes({ ...base, sessionId: 's', protocolVersion: '2025-06-18' });
    assert.equal(a['mcp.method.name'], 'tools/call');
    assert.equal(a['gen_ai.tool.name'], 'get_weather');
    assert.equal(a['jsonrpc.request.id'], '3');
    assert.equal(a['mcp.session.id'], 's');
    assert.equal(a['mcp.protocol.version'], '2025-06-18');
    assert.equal(a['error.type'], undefined);
    const d = mcpAttributes({ ...base, method: 'resources/read', tool: null, resourceUri: 'file:///x', requestId: null, errorCode: -32003 });
    assert.equal(d['mcp.resource.uri'], 'file:///x');
    assert.equal(d['gen_ai.operation.name'], undefined);
    assert.equal(d['jsonrpc.request.id'], undefined);
    assert.equal(d['error.type'], '-32003');
  });
});
