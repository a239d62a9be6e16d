import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { canonicalJson, fileDigest, isStructuredFile } from '../../../src/controlplane/digest.js';

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

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

  it('names the file and position of invalid JSON', () => {
    assert.throws(() => fileDigest('/data.json', Buffer.from('{"a": 1,\n "b": }')), /^Error: \/data\.json: not valid JSON at line 2 column 7: unexpected character "}"$/);
    assert.throws(() => canonicalJson('{"a":1} x'), /unexpected data after the JSON value/);
  });
});
