import { strict as assert } from 'node:assert';
import { canonicalize, CanonicalJsonError } from '../../../src/decisionlog/canonical.js';

/** An IEEE-754 double from its 16-hex-digit bit pattern. */
function fromBits(hex: string): number {
  const b = Buffer.from(hex.padStart(16, '0'), 'hex');
  return b.readDoubleBE(0);
}

describe('RFC 8785 canonical JSON', () => {
  it('serialises the RFC 3.2.2 example: primitives, numbers and string escapes', () => {
    const input = JSON.parse(String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`);
    assert.equal(canonicalize(input),
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  it('sorts members by UTF-16 code units (RFC 3.2.3 example)', () => {
    const input = JSON.parse(String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`);
    const keys = Object.keys(JSON.parse(canonicalize(input)) as Record<string, string>);
    // JSON.parse re-orders integer-like keys, so compare the text order instead.
    const text = canonicalize(input);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => text.indexOf(JSON.stringify(k) + ':'));
    assert.deepEqual([...order].sort((a, b) => a - b), order);
    assert.equal(keys.length, 7);
    assert.equal(text,
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}');
  });

  it('writes numbers as ECMAScript does (RFC appendix B samples)', () => {
    const samples: Array<[string, string]> = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, expected] of samples) assert.equal(canonicalize(fromBits(bits)), expected, bits);
  });

  it('rejects NaN and infinities, naming where they are', () => {
    for (const bad of ['7fffffffffffffff', '7ff0000000000000', 'fff0000000000000']) {
      assert.throws(() => canonicalize({ a: [1, { b: fromBits(bad) }] }), (e: unknown) => {
        assert.ok(e instanceof CanonicalJsonError);
        assert.equal(e.path, '/a/1/b');
        assert.match(e.message, /is not a JSON number at \/a\/1\/b/);
        return true;
      });
    }
    assert.throws(() => canonicalize({ n: 10n }), CanonicalJsonError);
  });

  it('nests, omits undefined members, and is stable through a parse round trip', () => {
    const v = { z: { b: [1, 'x', { d: null, c: false }], a: undefined }, a: 'é\u2028', m: -0 };
    const text = canonicalize(v);
    assert.equal(text, '{"a":"é\u2028","m":0,"z":{"b":[1,"x",{"c":false,"d":null}]}}');
    assert.equal(canonicalize(JSON.parse(text)), text);
  });

  it('escapes lone surrogates deterministically instead of failing', () => {
    const text = canonicalize({ s: 'a\ud800b' });
    assert.equal(text, '{"s":"a\\ud800b"}');
    assert.equal(canonicalize(JSON.parse(text)), text);
  });

  it('writes member names the same however many, however long, and with escapes', () => {
    // Names are escaped once and remembered (short ones, up to a bounded count): the text must not depend on that.
    const names = Array.from({ length: 5000 }, (_, i) => `k${i}${i % 7 === 0 ? '"\n' : ''}${i % 11 === 0 ? 'x'.repeat(100) : ''}`);
    const obj = Object.fromEntries(names.map((n, i) => [n, i]));
    const expected = '{' + [...names].sort().map((n) => `${JSON.stringify(n)}:${obj[n]}`).join(',') + '}';
    for (let round = 0; round < 3; round++) assert.equal(canonicalize(obj), expected);
    assert.throws(() => canonicalize({ [names[7]!]: [0, { [names[22]!]: NaN }] }), (e: unknown) => e instanceof CanonicalJsonError && e.path === `/${names[7]}/1/${names[22]}`);
  });

  it('honours toJSON like JSON.stringify (dates)', () => {
    assert.equal(canonicalize({ t: new Date(Date.UTC(2025, 0, 2)) }), '{"t":"2025-01-02T00:00:00.000Z"}');
  });
});
