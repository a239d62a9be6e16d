import { strict as assert } from 'node:assert';
import { gzipSync } from 'node:zlib';
import { readBundle, writeBundle } from '../../../src/bundle/archive.js';

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

describe('policy bundle archive, with the real opa', () => {
  it('writes entries opa itself can read (names keep the leading slash)', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { toolPath } = await import('../../../src/util/tools.js');
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-bundle-'));
    try {
      const built = join(dir, 'built.tar.gz');
      writeFileSync(join(dir, 'p.rego'), 'package t\n\nallow := true\n');
      execFileSync(toolPath('opa'), ['build', '-t', 'wasm', '-e', 't/allow', '-o', built, join(dir, 'p.rego')]);
      const files = await readBundle((await import('node:fs')).readFileSync(built));
      assert.ok(files.has('/policy.wasm'));
      const rewritten = join(dir, 'rewritten.tar.gz');
      writeFileSync(rewritten, await writeBundle(files));
      // Loading the bundle resolves the manifest's wasm module path against the entry names.
      const out = execFileSync(toolPath('opa'), ['build', '-b', rewritten, '-o', join(dir, 'again.tar.gz')], { stdio: 'pipe' }).toString();
      assert.equal(out, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
