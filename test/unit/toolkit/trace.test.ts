import { strict as assert } from 'node:assert';
import { contributingRules, packageOf, traceFiles, traceNotes } from '../../../src/toolkit/trace.js';

const rule = (name: string, file: string, row: number, op = 'Exit') => ({
  Op: op, Node: { head: { name, ref: [{ type: 'var', value: name }] }, body: [] }, Location: { file, row, col: 1 }, Message: '',
});

const sources = new Map([
  ['p/authz.rego', 'package tollgate.authz\n\nimport data.lib\n\ndecision := d if {\n\td := 1\n}\n\ndenials contains msg if {\n'],
  ['p/lib/tools.rego', '# METADATA\npackage tollgate.lib.tools\n\ngrants(a) if {\n'],
]);

describe('explain: reading an OPA trace', () => {
  it('lists rules whose body held, once each with a count, the queried package first', () => {
    const trace = [
      { Op: 'Enter', Node: [], Location: { file: '', row: 1 } },
      rule('grants', 'p/lib/tools.rego', 4),
      rule('grants', 'p/lib/tools.rego', 4),
      rule('denials', 'p/authz.rego', 9, 'Fail'),
      rule('denials', 'p/authz.rego', 9),
      rule('decision', 'p/authz.rego', 5),
      { Op: 'Exit', Node: [{ index: 0, terms: [] }], Location: { file: '', row: 1 } },
    ];
    assert.deepEqual(contributingRules(trace, sources, 'tollgate.authz'), [
      { file: 'p/authz.rego', line: 5, rule: 'data.tollgate.authz.decision', head: 'decision := d if {', times: 1, inQueriedPackage: true },
      { file: 'p/authz.rego', line: 9, rule: 'data.tollgate.authz.denials', head: 'denials contains msg if {', times: 1, inQueriedPackage: true },
      { file: 'p/lib/tools.rego', line: 4, rule: 'data.tollgate.lib.tools.grants', head: 'grants(a) if {', times: 2, inQueriedPackage: false },
    ]);
    assert.deepEqual(traceFiles(trace), ['p/authz.rego', 'p/lib/tools.rego']);
  });

  it('collects trace() notes and reads package names', () => {
    const notes = traceNotes([{ Op: 'Note', Location: { file: 'p/authz.rego', row: 12 }, Message: 'team is support' }, rule('x', 'p/authz.rego', 3)]);
    assert.deepEqual(notes, [{ file: 'p/authz.rego', line: 12, message: 'team is support' }]);
    assert.equal(packageOf('# c\npackage envoy.authz\n'), 'envoy.authz');
    assert.equal(packageOf('no package'), null);
  });
});
