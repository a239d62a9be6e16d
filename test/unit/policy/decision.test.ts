import { strict as assert } from 'node:assert';
import { NO_REASON, normaliseDecision, normaliseEnvoyCompat } from '../../../src/policy/decision.js';

describe('policy decision normalisation', () => {
  it('accepts a full decision object', () => {
    const d = normaliseDecision({ allow: true, reasons: ['ok'], headers: { 'x-a': '1' }, http_status: 200, mask: ['/input/mcp/arguments/p'], cost: 12, debug: { extra: true } });
    assert.deepEqual(d, { allow: true, reasons: ['ok'], headers: { 'x-a': '1' }, httpStatus: 200, mask: ['/input/mcp/arguments/p'], cost: 12 });
  });

  it('accepts reasons given as a set (a JSON array) and drops duplicates', () => {
    assert.deepEqual(normaliseDecision({ allow: false, reasons: ['b', 'a', 'b'] }).reasons, ['b', 'a']);
  });

  it('gives a denial without reasons a reason', () => {
    assert.deepEqual(normaliseDecision({ allow: false }).reasons, [NO_REASON]);
    assert.deepEqual(normaliseDecision({ allow: false, reasons: [] }).reasons, [NO_REASON]);
  });

  it('accepts a bare boolean', () => {
    assert.equal(normaliseDecision(true).allow, true);
    assert.deepEqual(normaliseDecision(true).reasons, []);
    const d = normaliseDecision(false);
    assert.equal(d.allow, false);
    assert.deepEqual(d.reasons, [NO_REASON]);
  });

  const malformed: Array<[string, unknown, RegExp]> = [
    ['undefined', undefined, /it is undefined/],
    ['null', null, /it is null/],
    ['a string', 'allow', /it is string "allow"/],
    ['a number', 1, /it is number 1/],
    ['an array', [true], /it is an array/],
    ['allow missing', { reasons: [] }, /"allow" is undefined, not a boolean/],
    ['allow as a string', { allow: 'true' }, /"allow" is string "true", not a boolean/],
    ['reasons as a string', { allow: false, reasons: 'no' }, /"reasons" is string "no", not an array or set of strings/],
    ['a non-string reason', { allow: false, reasons: ['x', 3] }, /"reasons" contains number 3/],
    ['headers with a number', { allow: true, headers: { a: 1 } }, /header "a" in "headers" is number 1/],
    ['headers as an array', { allow: true, headers: ['a'] }, /"headers" is an array/],
    ['status out of range', { allow: false, http_status: 42 }, /"http_status" is number 42, not an HTTP status code/],
    ['status as a string', { allow: false, http_status: '403' }, /"http_status" is string "403"/],
    ['mask not a list', { allow: true, mask: '/input/x' }, /"mask" is string/],
    ['negative cost', { allow: true, cost: -1 }, /"cost" is number -1/],
  ];
  for (const [what, raw, why] of malformed) {
    it(`denies a malformed decision: ${what}`, () => {
      const d = normaliseDecision(raw);
      assert.equal(d.allow, false);
      assert.equal(d.reasons.length, 1);
      assert.match(d.reasons[0]!, /^policy returned an invalid decision: /);
      assert.match(d.reasons[0]!, why);
    });
  }

  it('never lets a malformed field ride on an allow', () => {
    assert.equal(normaliseDecision({ allow: true, reasons: [1] }).allow, false);
    assert.equal(normaliseDecision({ allow: true, http_status: 'x' }).allow, false);
  });
});

describe('opa-envoy-plugin decision normalisation', () => {
  it('maps a boolean', () => {
    assert.equal(normaliseEnvoyCompat(true).allow, true);
    const d = normaliseEnvoyCompat(false);
    assert.equal(d.allow, false);
    assert.deepEqual(d.reasons, ['denied by envoy.authz.allow']);
  });

  it('maps the object form: allowed, headers, body, http_status', () => {
    const d = normaliseEnvoyCompat({ allowed: false, headers: { 'x-why': 'policy', 'x-list': ['a', 'b'] }, body: 'Unauthorized Request', http_status: 401 });
    assert.deepEqual(d, { allow: false, reasons: ['Unauthorized Request'], headers: { 'x-why': 'policy', 'x-list': 'a, b' }, httpStatus: 401, mask: [], cost: null });
  });

  it('accepts headers as a list of objects, folding repeated names', () => {
    assert.deepEqual(normaliseEnvoyCompat({ allowed: true, headers: [{ a: '1' }, { a: '2', b: '3' }] }).headers, { a: '1, 2', b: '3' });
  });

  it('denies malformed plugin results', () => {
    for (const raw of [{}, { allowed: 'yes' }, { allowed: true, headers: 'x' }, { allowed: true, headers: { a: 1 } }, { allowed: false, body: 3 }, { allowed: false, http_status: 9999 }, 'x']) {
      const d = normaliseEnvoyCompat(raw);
      assert.equal(d.allow, false, JSON.stringify(raw));
      assert.match(d.reasons[0]!, /^policy returned an invalid decision: .*expected a boolean or \{"allowed"/);
    }
  });
});
