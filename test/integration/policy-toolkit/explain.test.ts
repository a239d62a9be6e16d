import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { cleanup, policy, REPO_POLICIES, scratch, write } from './support.js';

describe('tollgate policy explain', function () {
  this.timeout(60_000);
  after(cleanup);

  it('shows the decision, the reasons and the rules that contributed', async () => {
    const r = await policy(['explain', '--policies', REPO_POLICIES, '--as', 'dora', '--team', 'support', '--groups', 'dba', '--tool', 'delete_records', '--args', '{"table": "refunds", "where": "1=1"}']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Call: {2}dora, team support, groups dba → tools\/call delete_records on demo/m);
    assert.match(r.out, /^WASM \(what the mesh runs, revision sha256:[0-9a-f]+\): DENY$/m);
    assert.match(r.out, /- Argument where of tool delete_records must narrow down the rows: "1=1" matches every row/);
    assert.match(r.out, /Interpreter \(opa eval on the Rego source\): DENY — agrees with the WASM/);
    // The argument-constraint denial, the destructive grant for dba, and the library check that fired.
    assert.match(r.out, /policies\/authz\.rego:\d+\s+denials contains msg if \{/);
    assert.match(r.out, /policies\/authz\.rego:\d+\s+tool_granted if \{/);
    assert.match(r.out, /policies\/lib\/sql\.rego: .*trivially_true \(\d+\)/);
  });

  it('shows trace() notes, opa\'s own trace on request, and JSON', async () => {
    const dir = write(scratch(), {
      'authz.rego': `package tollgate.authz

default decision := {"allow": false, "reasons": ["not a reader"]}

decision := {"allow": true} if {
\ttrace(sprintf("team is %s", [input.identity.team]))
\tinput.identity.team in {"payments", "readonly"}
}
`,
    });
    const r = await policy(['explain', '--policies', dir, '--as', 'a', '--team', 'readonly', '--tool', 'search_docs', '--trace', 'fails']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /WASM .*: ALLOW/);
    assert.ok(r.out.includes(`Notes (trace() calls):\n  ${join(dir, 'authz.rego')}:6  team is readonly`), r.out);
    assert.match(r.out, /opa eval trace:\n/);
    assert.ok(r.out.includes(`${join(dir, 'authz.rego')}:5  decision := {"allow": true} if {`), r.out);

    const j = await policy(['explain', '--policies', dir, '--as', 'a', '--team', 'support', '--tool', 'search_docs', '--json']);
    const doc = JSON.parse(j.out) as { wasm: { allow: boolean; reasons: string[] }; interpreter: { allow: boolean }; disagreement: string[]; input: { identity: { team: string } } };
    assert.deepEqual([doc.wasm.allow, doc.wasm.reasons, doc.interpreter.allow, doc.disagreement, doc.input.identity.team], [false, ['not a reader'], false, [], 'support']);
  });

  it('flags a disagreement between the WASM and the interpreter', async () => {
    // The WASM is asked as of --time; opa eval can only use the wall clock: a deadline between the two splits them.
    const dir = write(scratch(), {
      'authz.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if time.now_ns() < time.parse_rfc3339_ns("2001-01-01T00:00:00Z")\n',
    });
    const r = await policy(['explain', '--policies', dir, '--as', 'a', '--tool', 't', '--time', '2000-06-01T00:00:00Z']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /WASM .*: ALLOW/);
    assert.match(r.out, /Interpreter \(opa eval on the Rego source\): DENY/);
    assert.match(r.out, /WARNING: WASM and interpreter disagree on allow, reasons\. The mesh answers with the WASM decision\./);
  });
});
