import { strict as assert } from 'node:assert';
import { gzipSync } from 'node:zlib';
import { readBundle, writeBundle } from '../../../src/policy/bundle.js';

describe('policy bundle archive', () => {
  it('round-trips files with stable bytes', async () => {
    const files = new Map([['/policy.wasm', Buffer.from([0, 97, 115, 109])], ['/data.json', Buffer.from('{"a":1}')]]);
    const a = await writeBundle(files);
    const b = await writeBundle(new Map([...files].reverse()));
    assert.deepEqual(a, b);
    const back = await readBundle(a);
    assert.deepEqual([...back.keys()].sort(), ['/data.json', '/policy.wasm']);
    assert.equal(back.get('/data.json')!.toString(), '{"a":1}');
  });

  it('refuses bytes that are not gzip', async () => {
    await assert.rejects(readBundle(Buffer.from('not a bundle')), /not a valid gzip archive/);
  });

  it('refuses gzip that is not a tar', async () => {
    await assert.rejects(readBundle(gzipSync(Buffer.from('x'.repeat(1024)))), /tar archive|empty/);
  });
});
