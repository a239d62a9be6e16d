import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { DirBundleSource } from '../../../src/policy/sources/dir.js';
import { toolInput, waitFor, writePolicy } from './support.js';

describe('local directory bundle source', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-dir-source-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('builds and loads, rebuilds on change, and keeps the last good policy when a build fails', async () => {
    writePolicy(dir, ['a']);
    const holder = new PolicyHolder();
    const src = new DirBundleSource({ holder, dir, watch: true, debounceMs: 50, pollMs: 500 });
    await src.start();
    try {
      const first = holder.get()!.revision;
      assert.match(first, /^local-[0-9a-f]{12}$/);
      assert.equal(holder.get()!.evaluate(toolInput('a')).allow, true);

      writePolicy(dir, ['b']);
      await waitFor(() => holder.get()!.revision !== first, 'a rebuild', () => src.status());
      assert.equal(holder.get()!.evaluate(toolInput('b')).allow, true);
      const second = holder.get()!.revision;

      writeFileSync(join(dir, 'authz.rego'), 'package tollgate.authz\n\nallow if {\n');
      await waitFor(() => src.status().rejections === 1, 'a rejected build', () => src.status());
      assert.equal(holder.get()!.revision, second);
      // The build names the file and the parse error (exact formatting is build.ts's concern).
      assert.match(src.status().lastError!.message, /authz\.rego/);
      assert.match(src.status().lastError!.message, /rego_parse_error/);

      writePolicy(dir, ['a']);
      await waitFor(() => holder.get()!.revision === first, 'the first revision again (same content, same revision)', () => src.status());
    } finally {
      await src.stop();
    }
  });

  it('starts empty (Check denies) when the first build fails', async () => {
    writeFileSync(join(dir, 'authz.rego'), 'package tollgate.authz\n\nallow := \n');
    const holder = new PolicyHolder();
    const src = new DirBundleSource({ holder, dir });
    await src.start();
    assert.equal(holder.get(), null);
    assert.equal(src.status().rejections, 1);
    assert.match(src.status().lastError!.message, /^policy build of directory .* failed, keeping revision \(none\): /);
  });
});
