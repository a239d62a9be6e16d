import { strict as assert } from 'node:assert';
import { contentDigest, manifestRevision, withRevision } from '../../../src/bundle/manifest.js';
import { encodePointer, objectName, parsePointer, parseRevision } from '../../../src/bundle/pointer.js';
import { sampleBundle } from './fixtures.js';

describe('bundle manifest and pointer', () => {
  it('stamps a revision without touching the other manifest fields', () => {
    const stamped = withRevision(sampleBundle(), '7');
    assert.equal(manifestRevision(stamped), '7');
    assert.equal(manifestRevision(sampleBundle()), null);
    const m = JSON.parse(stamped.get('/.manifest')!.toString()) as Record<string, unknown>;
    assert.deepEqual(m.wasm, [{ entrypoint: 'tollgate/authz/decision', module: '/policy.wasm' }]);
  });

  it('content digest ignores the revision but not the policy', () => {
    const a = sampleBundle();
    assert.equal(contentDigest(withRevision(a, '1')), contentDigest(withRevision(a, '2')));
    const b = sampleBundle();
    b.set('/policies/authz.rego', Buffer.from('package tollgate.authz\n\ndefault allow := true\n'));
    assert.notEqual(contentDigest(a), contentDigest(b));
  });

  it('round-trips a pointer and names what is wrong with a bad one', () => {
    const p = { revision: 3, object: objectName('current', 3, 'ab'.repeat(32)), sha256: 'ab'.repeat(32), size: 10, published_at: '2025-01-01T00:00:00Z', content_sha256: 'c', kid: 'k' };
    assert.equal(p.object, 'current/000000000003-abababababababab');
    assert.deepEqual(parsePointer(encodePointer(p)), p);
    for (const r of [0, -1, 1.5, 2 ** 53 - 1, 1e12]) {
      assert.throws(() => parsePointer(encodePointer({ ...p, revision: r })), /"revision" must be an integer from 1 to 999999999999/, String(r));
    }
    assert.deepEqual(parsePointer(encodePointer({ ...p, revision: 999_999_999_999 })).revision, 999_999_999_999);
    assert.throws(() => parsePointer(Buffer.from('nope')), /bundle pointer is not valid JSON/);
    assert.throws(() => parsePointer(encodePointer({ ...p, sha256: 'XYZ' })), /"sha256" must be 64 lowercase hex digits/);
  });

  it('only plain positive integers are control-plane revisions', () => {
    assert.equal(parseRevision('12'), 12);
    for (const s of [null, '', '0', '012', '1.5', 'local-abc', '99999999999999999', '9007199254740991', '1000000000000']) assert.equal(parseRevision(s), null, String(s));
    assert.equal(parseRevision('999999999999'), 999_999_999_999);
  });
});
