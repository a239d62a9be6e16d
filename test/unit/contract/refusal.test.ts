import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { ErrorCode, reasonClassOf, refusal, REASON_CLASSES } from '../../../src/contract/refusal.js';
import { parseMcpBody, DEFAULT_BODY_LIMITS } from '../../../src/mcp/jsonrpc.js';

describe('refusal taxonomy', () => {
  it('gives each refusal its code, HTTP status and reason class from one table', () => {
    assert.deepEqual(refusal('sessionNotOwned', 'x'), { kind: 'sessionNotOwned', code: -32008, httpStatus: 404, reasonClass: 'auth', message: 'x' });
    assert.deepEqual(refusal('tooLarge', 'x'), { kind: 'tooLarge', code: -32005, httpStatus: 413, reasonClass: 'bad_request', message: 'x' });
    assert.deepEqual(refusal('late', 'x'), { kind: 'late', code: -32006, httpStatus: 504, reasonClass: 'unavailable', message: 'x' });
    // Policy-like refusals take the deny status in force (configured, or the policy's http_status).
    assert.equal(refusal('policyDenied', 'x', 200).httpStatus, 200);
    assert.equal(refusal('budgetExhausted', 'x', 429).httpStatus, 429);
  });

  it('classes every code the way metrics always have', () => {
    const want: Array<[number | null, string]> = [
      [null, 'policy'], [ErrorCode.PolicyDenied, 'policy'], [ErrorCode.BatchAborted, 'policy'], [ErrorCode.BudgetExhausted, 'budget'],
      [ErrorCode.Unauthenticated, 'auth'], [ErrorCode.SessionNotOwned, 'auth'], [ErrorCode.ParseError, 'bad_request'],
      [ErrorCode.InvalidRequest, 'bad_request'], [ErrorCode.InvalidParams, 'bad_request'], [ErrorCode.RequestTooLarge, 'bad_request'],
      [ErrorCode.Unavailable, 'unavailable'], [-32099, 'unavailable'],
    ];
    for (const [code, cls] of want) assert.equal(reasonClassOf(code), cls, String(code));
    assert.ok(want.every(([, c]) => REASON_CLASSES.includes(c as never)));
  });

  it('is what the body parser refuses with', () => {
    const tooBig = parseMcpBody(Buffer.alloc(DEFAULT_BODY_LIMITS.maxBytes + 1, 32), DEFAULT_BODY_LIMITS);
    assert.ok(!tooBig.ok && tooBig.error.kind === 'tooLarge' && tooBig.error.httpStatus === 413 && tooBig.error.code === -32005);
    const bad = parseMcpBody(Buffer.from('{"jsonrpc":'), DEFAULT_BODY_LIMITS);
    assert.ok(!bad.ok && bad.error.kind === 'parseError' && bad.error.httpStatus === 400);
  });

  it('matches the error-code table users read in docs/policy-input.md', () => {
    const doc = readFileSync('docs/policy-input.md', 'utf8');
    for (const code of Object.values(ErrorCode)) assert.ok(doc.includes(String(code)), `docs/policy-input.md lists ${code}`);
  });
});
