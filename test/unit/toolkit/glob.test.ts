import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandGlob, globToRegExp, staticBase } from '../../../src/toolkit/glob.js';

describe('scenario globs', () => {
  it('translates *, ?, ** and {a,b}', () => {
    const re = globToRegExp('policies/scenarios/**/*.{yaml,yml}');
    for (const p of ['policies/scenarios/a.yaml', 'policies/scenarios/x/y/b.yml']) assert.ok(re.test(p), p);
    for (const p of ['policies/scenarios/a.json', 'policies/other/a.yaml', 'policies/scenarios/a.yaml.bak']) assert.ok(!re.test(p), p);
    assert.ok(globToRegExp('a/?.yaml').test('a/b.yaml'));
    assert.ok(!globToRegExp('a/*.yaml').test('a/b/c.yaml'));
    assert.ok(globToRegExp('a/x.(1)+.yaml').test('a/x.(1)+.yaml'));
    assert.equal(staticBase('policies/scenarios/**/*.yaml'), 'policies/scenarios');
    assert.equal(staticBase('*.yaml'), '.');
    assert.equal(staticBase('/tmp/s/*.yaml'), '/tmp/s');
  });

  it('expands against the file system, sorted; a directory means its YAML files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-glob-'));
    try {
      mkdirSync(join(dir, 'sc', 'deep'), { recursive: true });
      for (const f of ['sc/b.yaml', 'sc/a.yml', 'sc/deep/c.yaml', 'sc/notes.txt']) writeFileSync(join(dir, f), '');
      assert.deepEqual(expandGlob(`${dir}/sc/**/*.{yaml,yml}`), [join(dir, 'sc/a.yml'), join(dir, 'sc/b.yaml'), join(dir, 'sc/deep/c.yaml')]);
      assert.deepEqual(expandGlob(`${dir}/sc/*.yaml`), [join(dir, 'sc/b.yaml')]);
      assert.deepEqual(expandGlob(join(dir, 'sc')), [join(dir, 'sc/a.yml'), join(dir, 'sc/b.yaml'), join(dir, 'sc/deep/c.yaml')]);
      assert.deepEqual(expandGlob(join(dir, 'sc/notes.txt')), [join(dir, 'sc/notes.txt')]);
      assert.deepEqual(expandGlob(join(dir, 'missing/*.yaml')), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
