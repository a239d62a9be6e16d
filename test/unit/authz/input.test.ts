import { strict as assert } from 'node:assert';
import { sharedInput, parsePath, parseQuery } from '../../../src/authz/input.js';
import { PendingCalls, type PendingCall } from '../../../src/authz/pending.js';
import type { HttpRequestView } from '../../../src/authz/view.js';

const req: HttpRequestView = {
  id: 'r1', method: 'POST', path: '/mcp?x=1&x=2', query: 'x=1&x=2', host: 'h', scheme: 'http', protocol: 'HTTP/1.1',
  headers: { authorization: 'Bearer secret.jwt', cookie: 'sid=1', 'content-type': 'application/json' },
  body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"ping"}'), truncated: false, context: {},
  source: { address: '', principal: '' }, destination: { address: '', principal: '' }, traceId: null,
};

describe('policy input construction', () => {
  it('tollgate mode leaves credentials and the raw body string out of the input', () => {
    const s = sharedInput(req, null, { jsonrpc: '2.0' }, 1);
    assert.deepEqual(s.request.headers, { 'content-type': 'application/json' });
    const http = (s.attributes.request as { http: Record<string, unknown> }).http;
    assert.equal(http.body, undefined);
    assert.ok(!JSON.stringify(s).includes('secret.jwt'));
    assert.deepEqual(s.parsed_body, { jsonrpc: '2.0' });
  });

  it('envoy mode gives opa-envoy-plugin policies the raw headers and body they expect', () => {
    const s = sharedInput(req, null, null, 1, 'envoy');
    const http = (s.attributes.request as { http: Record<string, unknown> }).http;
    assert.equal((http.headers as Record<string, string>).authorization, 'Bearer secret.jwt');
    // Not from a CheckRequest: rebuilt as Envoy packs it (bytes, base64 in the plugin's JSON).
    assert.equal(Buffer.from(String(http.rawBody), 'base64').toString('utf8'), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
    assert.equal(http.path, '/mcp?x=1&x=2');
    assert.deepEqual(s.version, { ext_authz: 'v3', encoding: 'protojson' });
  });

  it('parses path segments and repeated query parameters the way opa-envoy-plugin does', () => {
    assert.deepEqual(parsePath('/a/b%20c/'), ['a', 'b c', '']);
    assert.deepEqual(parsePath('/'), ['']);
    assert.deepEqual(parsePath('//mcp'), ['mcp']);
    assert.deepEqual(parsePath('/bad%zz'), ['bad%zz']);
    assert.deepEqual(parseQuery('x=1&x=2&y='), { x: ['1', '2'], y: [''] });
  });
});

describe('PendingCalls', () => {
  const call = (id: string, at: number): PendingCall => ({
    decisionId: id, subject: { team: null, agent: null, sub: 's', server: 'x', tool: null }, method: null, tool: null, server: 'x', requestTokens: 0, createdAt: at,
  });

  it('expires calls nobody took (a sidecar without ext_proc) and stays bounded', () => {
    const p = new PendingCalls(1000, 3);
    p.put(call('a', 0));
    p.put(call('b', 10));
    p.put(call('c', 2000)); // a and b are older than the TTL by now
    assert.equal(p.size, 1);
    p.put(call('d', 2001));
    p.put(call('e', 2002));
    p.put(call('f', 2003)); // over max: the oldest goes
    assert.equal(p.size, 3);
    assert.equal(p.peek('c'), undefined);
    assert.equal(p.take('f')?.decisionId, 'f');
    assert.equal(p.take('f'), undefined);
  });
});
