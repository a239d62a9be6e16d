import { strict as assert } from 'node:assert';
import { applyPatch, escapePointerToken, JsonPatchError, parsePatch, parsePointer, pointer, type PatchOp } from '../../../src/k8s/jsonpatch.js';

// Cases follow the examples of RFC 6902, Appendix A.
describe('k8s/jsonpatch (RFC 6902)', () => {
  const cases: { name: string; doc: unknown; patch: PatchOp[]; want: unknown }[] = [
    { name: 'A.1 add an object member', doc: { foo: 'bar' }, patch: [{ op: 'add', path: '/baz', value: 'qux' }], want: { baz: 'qux', foo: 'bar' } },
    { name: 'A.2 add an array element', doc: { foo: ['bar', 'baz'] }, patch: [{ op: 'add', path: '/foo/1', value: 'qux' }], want: { foo: ['bar', 'qux', 'baz'] } },
    { name: 'A.3 remove an object member', doc: { baz: 'qux', foo: 'bar' }, patch: [{ op: 'remove', path: '/baz' }], want: { foo: 'bar' } },
    { name: 'A.4 remove an array element', doc: { foo: ['bar', 'qux', 'baz'] }, patch: [{ op: 'remove', path: '/foo/1' }], want: { foo: ['bar', 'baz'] } },
    { name: 'A.5 replace a value', doc: { baz: 'qux', foo: 'bar' }, patch: [{ op: 'replace', path: '/baz', value: 'boo' }], want: { baz: 'boo', foo: 'bar' } },
    {
      name: 'A.6 move a value',
      doc: { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
      patch: [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
      want: { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } },
    },
    { name: 'A.7 move an array element', doc: { foo: ['all', 'grass', 'cows', 'eat'] }, patch: [{ op: 'move', from: '/foo/1', path: '/foo/3' }], want: { foo: ['all', 'cows', 'eat', 'grass'] } },
    {
      name: 'A.8 test a value: success',
      doc: { baz: 'qux', foo: ['a', 2, 'c'] },
      patch: [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }],
      want: { baz: 'qux', foo: ['a', 2, 'c'] },
    },
    { name: 'A.10 add a nested member object', doc: { foo: 'bar' }, patch: [{ op: 'add', path: '/child', value: { grandchild: {} } }], want: { foo: 'bar', child: { grandchild: {} } } },
    { name: 'A.14 ~ escape ordering', doc: { '/': 9, '~1': 10 }, patch: [{ op: 'test', path: '/~01', value: 10 }], want: { '/': 9, '~1': 10 } },
    { name: 'A.16 add an array value', doc: { foo: ['bar'] }, patch: [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], want: { foo: ['bar', ['abc', 'def']] } },
    { name: 'replace the whole document', doc: { a: 1 }, patch: [{ op: 'replace', path: '', value: [1] }], want: [1] },
    { name: 'copy', doc: { a: { b: [1] } }, patch: [{ op: 'copy', from: '/a', path: '/c' }], want: { a: { b: [1] }, c: { b: [1] } } },
    { name: 'test compares objects regardless of member order', doc: { a: { x: 1, y: 2 } }, patch: [{ op: 'test', path: '/a', value: { y: 2, x: 1 } }], want: { a: { x: 1, y: 2 } } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(applyPatch(c.doc, c.patch), c.want));
  }

  const failures: { name: string; doc: unknown; patch: PatchOp[]; message: RegExp }[] = [
    { name: 'A.9 test a value: error', doc: { baz: 'qux' }, patch: [{ op: 'test', path: '/baz', value: 'bar' }], message: /test failed/ },
    { name: 'A.12 add to a nonexistent target', doc: { foo: 'bar' }, patch: [{ op: 'add', path: '/baz/bat', value: 'qux' }], message: /"baz" does not exist/ },
    { name: 'A.15 a string is not a number', doc: { '/': 9, '~1': 10 }, patch: [{ op: 'test', path: '/~01', value: '10' }], message: /test failed/ },
    { name: 'index past the end', doc: { a: [1] }, patch: [{ op: 'add', path: '/a/2', value: 0 }], message: /out of bounds/ },
    { name: 'leading zero index', doc: { a: [1, 2] }, patch: [{ op: 'remove', path: '/a/01' }], message: /not an array index/ },
    { name: 'remove a missing member', doc: { a: 1 }, patch: [{ op: 'remove', path: '/b' }], message: /does not exist/ },
    { name: 'move into its own child', doc: { a: { b: {} } }, patch: [{ op: 'move', from: '/a', path: '/a/b/c' }], message: /own children/ },
  ];
  for (const c of failures) {
    it(`refuses: ${c.name}`, () => {
      assert.throws(() => applyPatch(c.doc, c.patch), (e: unknown) => e instanceof JsonPatchError && c.message.test(e.message));
    });
  }

  it('is atomic and never modifies its input', () => {
    const doc = { a: [1, 2], b: { c: 1 } };
    const before = structuredClone(doc);
    assert.throws(() => applyPatch(doc, [{ op: 'add', path: '/a/-', value: 3 }, { op: 'remove', path: '/nope' }]), JsonPatchError);
    assert.deepEqual(doc, before);
    const out = applyPatch(doc, [{ op: 'add', path: '/b/d', value: { e: 1 } }]);
    assert.deepEqual(doc, before);
    assert.notEqual(out.b, doc.b);
  });

  it('encodes and decodes pointer tokens', () => {
    assert.equal(escapePointerToken('tollgate.dev/inject'), 'tollgate.dev~1inject');
    assert.equal(pointer('metadata', 'annotations', 'a~b/c'), '/metadata/annotations/a~0b~1c');
    assert.deepEqual(parsePointer('/metadata/annotations/a~0b~1c'), ['metadata', 'annotations', 'a~b/c']);
    assert.deepEqual(parsePointer(''), []);
    assert.throws(() => parsePointer('metadata'), /must be empty or start with/);
    assert.throws(() => parsePointer('/a~2'), /bad escape/);
  });

  it('checks the shape of an untrusted patch', () => {
    assert.deepEqual(parsePatch([{ op: 'add', path: '/a', value: 1 }]), [{ op: 'add', path: '/a', value: 1 }]);
    assert.throws(() => parsePatch({}), /array/);
    assert.throws(() => parsePatch([{ op: 'frob', path: '/a' }]), /"op" must be one of/);
    assert.throws(() => parsePatch([{ op: 'add', path: '/a' }]), /"value" is missing/);
    assert.throws(() => parsePatch([{ op: 'move', path: '/a' }]), /"from" must be a string/);
  });
});
