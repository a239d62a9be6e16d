import { strict as assert } from 'node:assert';
import { toCheckResponse, toRequestView } from '../../../src/authz/grpc-check.js';
import { deadlineMs } from '../../../src/authz/server.js';
import { bearerChallenge, deniedMessage, denyWithRpcErrors, refuse, unauthenticated } from '../../../src/authz/respond.js';
import { refusal } from '../../../src/contract/refusal.js';

describe('ext_authz translation (grpc-check.ts)', () => {
  const msg = (method: string, extra: Record<string, unknown> = {}) => ({
    attributes: {
      source: { address: { socketAddress: { address: '10.0.0.7', portValue: 5100 } }, principal: 'spiffe://x/agent' },
      destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 10000 } } },
      request: { http: { id: 'r1', method, path: '/mcp?x=1', host: 'mcp.local', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x-envoy-auth-partial-body': 'true' }, rawBody: Buffer.from('{}'), ...extra } },
      contextExtensions: { server: 'billing', namespace: 'prod' },
    },
  });

  it('keeps the HTTP method exactly as Envoy saw it, so Check can refuse a case variant', () => {
    assert.equal(toRequestView(msg('get')).method, 'get');
    assert.equal(toRequestView(msg('POST')).method, 'POST');
  });

  it('reads peers, body, query, trace id, truncation and the route context', () => {
    const v = toRequestView(msg('POST'));
    assert.deepEqual(v.source, { address: '10.0.0.7:5100', principal: 'spiffe://x/agent' });
    assert.equal(v.destination.address, '10.0.0.9:10000');
    assert.equal(v.body.toString(), '{}');
    assert.equal(v.query, 'x=1');
    assert.equal(v.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(v.truncated, true);
    assert.deepEqual(v.context, { server: 'billing', namespace: 'prod' });
    assert.equal(toRequestView({}).method, '', 'an empty CheckRequest is readable (and refused by Check)');
  });

  it('turns the gRPC call deadline into epoch ms, and no deadline into null', () => {
    assert.equal(deadlineMs(new Date(1_700_000_000_123)), 1_700_000_000_123);
    assert.equal(deadlineMs(1_700_000_000_000), 1_700_000_000_000);
    assert.equal(deadlineMs(Infinity), null);
  });

  it('maps allows to OK with header mutations, 401 to UNAUTHENTICATED and other denials to PERMISSION_DENIED', () => {
    const ok = toCheckResponse({ allow: true, headers: { 'x-tollgate-decision-id': 'd1' }, removeHeaders: ['authorization'] });
    assert.deepEqual(ok, { status: { code: 0 }, okResponse: { headers: [{ header: { key: 'x-tollgate-decision-id', value: 'd1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }], headersToRemove: ['authorization'] } });
    const denied = toCheckResponse(refuse('d2', refusal('sessionNotOwned', 'not yours'), 4));
    assert.equal(denied.status.code, 7);
    assert.equal(denied.deniedResponse!.status.code, 404);
    const unauth = toCheckResponse(unauthenticated('d3', 1, refusal('unauthenticated', 'token expired'), 'expired', 'http://h/.well-known/oauth-protected-resource/mcp'));
    assert.equal(unauth.status.code, 16);
    assert.equal(unauth.deniedResponse!.status.code, 401);
  });
});

describe('denial bodies (respond.ts)', () => {
  it('answers a refusal with its code, status and the decision id, as a JSON-RPC error to the request id', () => {
    const out = refuse('d9', refusal('tooLarge', 'request body exceeds the 10-byte limit'), 'req-1');
    assert.ok(!out.allow);
    assert.equal(out.status, 413);
    assert.equal(out.headers['x-tollgate-decision-id'], 'd9');
    assert.deepEqual(JSON.parse(out.body), { jsonrpc: '2.0', id: 'req-1', error: { code: -32005, message: 'Tollgate: request body exceeds the 10-byte limit (decision d9)', data: { decision_id: 'd9', reasons: ['request body exceeds the 10-byte limit'] } } });
  });

  it('tells a client without a token to send one (invalid_request), and one with a bad token that it is invalid', () => {
    const missing = unauthenticated('d4', 'r', refusal('unauthenticated', 'no bearer token'), 'missing_token', 'http://h/m');
    const bad = unauthenticated('d5', null, refusal('unauthenticated', 'signature does not verify'), 'bad_signature', 'http://h/m');
    assert.ok(!missing.allow && !bad.allow);
    assert.match(missing.headers['www-authenticate']!, /error="invalid_request"/);
    assert.match(bad.headers['www-authenticate']!, /error="invalid_token"/);
    assert.deepEqual(JSON.parse(bad.body).error, {
      code: -32001, message: 'Tollgate: authentication required: signature does not verify (decision d5)',
      data: { decision_id: 'd5', reasons: ['signature does not verify'], auth_failure: 'bad_signature' },
    });
    assert.equal(bad.headers['x-tollgate-decision'], 'deny');
  });

  it('says "denied by policy" when the policy gave no reason, and joins several', () => {
    assert.equal(deniedMessage([], 'd'), 'Tollgate denied this call: denied by policy (decision d)');
    assert.equal(deniedMessage(['a', 'b'], 'd'), 'Tollgate denied this call: a; b (decision d)');
  });

  it('answers a batch with an array, and quotes safely in the Bearer challenge', () => {
    const out = denyWithRpcErrors(200, [{ id: 1, code: -32007, message: 'a', data: { decision_id: 'd' } }, { id: 2, code: -32003, message: 'b', data: { decision_id: 'd' } }], true, 'd');
    assert.ok(!out.allow && Array.isArray(JSON.parse(out.body)));
    assert.equal(bearerChallenge('http://m"x', 'invalid_token', 'bad "quote" \\ here'), 'Bearer resource_metadata="http://m\'x", error="invalid_token", error_description="bad \'quote\' \' here"');
  });
});
