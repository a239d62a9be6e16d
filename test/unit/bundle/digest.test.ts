import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { canonicalJson, fileDigest, isStructuredFile } from '../../../src/bundle/digest.js';
import { mulberry32 } from '../../support/prng.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

/** Deterministic, so a failing document can be reproduced from its seed. */
const prng = mulberry32;

// Few keys, so that objects get duplicates and every order; some only differ above U+FFFF or in
// lone surrogates, where UTF-8 and UTF-16 orders disagree.
const KEYS = ['a', 'b', 'B', 'ab', 'a b', '10', '2', 'é', '\uffef', '😀', '\ud800', '\udfff', 'q"uote', 'back\\slash', 'line\u2028sep', 'tab\t'];
const STRINGS = ['', 'x<y&z', 'refund', 'ünïcödé', '😀 smile', 'lone \ud83d', 'ctrl \u0001\u001f', 'nl\n', '\u2029', 'sl/ash', 'quote " and \\'];
const NUMBERS = ['0', '-1', '7', '42', '123456', '-0.5', '3.25'];

/** JSON text for `value`, with random whitespace and random \\u escapes in place of characters. */
function randomText(rand: () => number, depth: number): string {
  const ws = (): string => [' ', '', '\n', '\t', '  '][Math.floor(rand() * 5)]!;
  const str = (s: string): string => '"' + [...s].map((ch) => {
    const units = [...Array(ch.length).keys()].map((k) => ch.charCodeAt(k));
    if (ch === '"' || ch === '\\' || units[0]! < 0x20 || rand() < 0.2) return units.map((u) => '\\u' + u.toString(16).padStart(4, '0')).join('');
    return ch;
  }).join('') + '"';
  const r = rand();
  if (depth > 3 || r < 0.3) {
    const leaf = rand();
    if (leaf < 0.4) return str(STRINGS[Math.floor(rand() * STRINGS.length)]!);
    if (leaf < 0.7) return NUMBERS[Math.floor(rand() * NUMBERS.length)]!;
    return ['true', 'false', 'null'][Math.floor(rand() * 3)]!;
  }
  const n = Math.floor(rand() * 6);
  if (r < 0.5) return '[' + ws() + [...Array(n).keys()].map(() => randomText(rand, depth + 1)).join(ws() + ',' + ws()) + ws() + ']';
  const members = [...Array(n).keys()].map(() => str(KEYS[Math.floor(rand() * KEYS.length)]!) + ws() + ':' + ws() + randomText(rand, depth + 1));
  return '{' + ws() + members.join(ws() + ',' + ws()) + ws() + '}';
}

/**
 * An independent rendering of OPA's canonical form for documents whose numbers print as JSON.parse
 * reads them: JSON.parse keeps the last duplicate as Go does, keys are sorted as UTF-8 bytes, and
 * JSON.stringify's string escapes are Go's except for U+2028/U+2029 and lone surrogates.
 */
function reference(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(reference).join(',') + ']';
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return '{' + keys.map((k) => reference(k) + ':' + reference(o[k])).join(',') + '}';
  }
  if (typeof v === 'string') {
    return JSON.stringify(v).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029').replace(/\\ud[89a-f][0-9a-f]{2}/g, '\ufffd');
  }
  return JSON.stringify(v);
}

describe('bundle file digests (OPA canonical form)', () => {
  it('hashes code and other files as raw bytes', () => {
    const body = Buffer.from('package x\n\nallow := true\n');
    assert.equal(fileDigest('/x.rego', body), sha(body));
    assert.equal(fileDigest('/policy.wasm', Buffer.from([0, 97, 115, 109])), sha(Buffer.from([0, 97, 115, 109])));
    assert.equal(fileDigest('/other.json', Buffer.from('{ "b": 1 }')), sha('{ "b": 1 }'));
  });

  it('treats data.json, data.yaml and .manifest as structured, at any depth', () => {
    for (const p of ['/data.json', '/a/b/data.json', '/data.yaml', '/.manifest']) assert.ok(isStructuredFile(p), p);
    for (const p of ['/x.json', '/policy.wasm', '/data.json.bak']) assert.ok(!isStructuredFile(p), p);
  });

  it('sorts keys, drops whitespace, keeps number literals verbatim', () => {
    assert.equal(canonicalJson('{ "b": [1.50, -0, 1E+5, 12345678901234567890123], "a": {"z": null, "y": true} }'),
      '{"a":{"y":true,"z":null},"b":[1.50,-0,1E+5,12345678901234567890123]}');
  });

  it('escapes strings as Go does without HTML escaping', () => {
    assert.equal(canonicalJson('"<&>\\u0008\\f\\n\\r\\t\\u001f\\u007f\\u2028\\u2029\\/\\"\\\\"'),
      '"<&>\\b\\f\\n\\r\\t\\u001f\u007f\\u2028\\u2029/\\"\\\\"');
    assert.equal(canonicalJson('"\\ud83d\\ude00 \\ud800"'), '"😀 \ufffd"');
  });

  it('orders keys by UTF-8 bytes, not UTF-16 units, and keeps the last duplicate', () => {
    assert.equal(canonicalJson('{"\\ud83d\\ude00":1,"\\uffef":2,"dup":1,"dup":2}'), '{"dup":2,"\uffef":2,"😀":1}');
  });

  it('hashes the canonical form of structured files', () => {
    assert.equal(fileDigest('/data.json', Buffer.from('{\n  "b": 1,\n  "a": "x"\n}\n')), sha('{"a":"x","b":1}'));
    assert.equal(fileDigest('/data.yaml', Buffer.from('b: 1.50\na: [x, 2]\n')), sha('{"a":["x",2],"b":1.5}'));
  });

  it('agrees with an independent rendering on random documents (duplicates, key orders, escapes)', () => {
    const rand = prng(20261123);
    for (let n = 0; n < 2000; n++) {
      const text = randomText(rand, 0);
      assert.equal(canonicalJson(text), reference(JSON.parse(text)), `document ${n}: ${text}`);
    }
  });

  it('names the file and position of invalid JSON', () => {
    assert.throws(() => fileDigest('/data.json', Buffer.from('{"a": 1,\n "b": }')), /^Error: \/data\.json: not valid JSON at line 2 column 7: unexpected character "}"$/);
    assert.throws(() => canonicalJson('{"a":1} x'), /unexpected data after the JSON value/);
  });
});
