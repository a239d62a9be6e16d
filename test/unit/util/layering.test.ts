import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { checkLayering, cyclicGroups, describe as describeReport, fileCycles, importsOf, TOLLGATE_RULES } from '../../../src/util/layering.js';

const SRC = join(import.meta.dirname, '../../../src');

function readTree(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = join(entry.parentPath, entry.name);
    files.set(relative(root, full).split('\\').join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

describe('layering of src/ (docs/architecture.md, "Layers")', () => {
  it('has no import cycle between top-level directories and no forbidden direction', () => {
    const files = readTree(SRC);
    assert.ok(files.size > 100, `read only ${files.size} files from ${SRC}`);
    const problems = describeReport(checkLayering(files, TOLLGATE_RULES));
    assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
  });

  it('has no import cycle between files either', () => {
    const cycles = fileCycles(readTree(SRC));
    assert.deepEqual(cycles, [], `\n${cycles.map((c) => `cycle between ${c.join(', ')}`).join('\n')}`);
  });

  it('resolves .js specifiers to .ts files, static, dynamic, type-only and re-exports alike', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "export { c } from '../c/c.js';",
      "import './side.js';",
      "const d = await import('../d/d.js');",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    assert.deepEqual(importsOf('x/x.ts', text).map((e) => e.to), ['x/a.ts', 'b/b.ts', 'c/c.ts', 'x/side.ts', 'd/d.ts']);
  });

  it('catches a cycle between directories and names the imports that close it', () => {
    const files = new Map([
      ['a/one.ts', "import { two } from '../b/two.js';"],
      ['b/two.ts', "import { three } from '../c/three.js';"],
      ['c/three.ts', "import { one } from '../a/one.js';"],
      ['d/four.ts', "import { one } from '../a/one.js';"],
    ]);
    const report = checkLayering(files, []);
    assert.deepEqual(report.cycles.map((c) => c.dirs), [['a', 'b', 'c']]);
    assert.equal(report.cycles[0]!.edges.length, 3);
    assert.match(describeReport(report)[0]!, /cycle between a, b, c:\n {4}a\/one\.ts -> b\/two\.ts/);
  });

  it('catches the data plane importing the control plane, and contract/ importing anything', () => {
    const files = new Map([
      ['authz/runtime.ts', "import { k } from '../controlplane/keys.js';"],
      ['contract/policy.ts', "import type { P } from '../pins/store.js';"],
      ['controlplane/serve.ts', "import { r } from '../authz/runtime.js';"],
    ]);
    const report = checkLayering(files, TOLLGATE_RULES);
    assert.deepEqual(report.cycles.map((c) => c.dirs), [['authz', 'controlplane']]);
    assert.deepEqual(report.violations.map((v) => `${v.edge.from} -> ${v.edge.to}`), [
      'authz/runtime.ts -> controlplane/keys.ts',
      'contract/policy.ts -> pins/store.ts',
    ]);
  });

  it('finds file-level cycles, a file importing itself excluded', () => {
    const graph = new Map([['a', new Set(['b'])], ['b', new Set(['a'])], ['c', new Set(['c', 'a'])]]);
    assert.deepEqual(cyclicGroups(graph), [['a', 'b']]);
    const files = new Map([['x/a.ts', "import './b.js';"], ['x/b.ts', "import './a.js';"], ['x/c.ts', "import './a.js';"]]);
    assert.deepEqual(fileCycles(files), [['x/a.ts', 'x/b.ts']]);
  });
});
