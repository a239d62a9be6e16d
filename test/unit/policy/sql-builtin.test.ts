import { strict as assert } from 'node:assert';
import { analyzeSql, DEFAULT_MAX_SQL_BYTES, loadSqlParser, statementKind } from '../../../src/policy/builtin-sql.js';
import { opaCapabilitiesFile, opaCapabilitiesJson } from '../../../src/policy/build.js';
import { loadPolicyFromDir, type WasmPolicy } from '../../../src/policy/engine.js';
import { runOpa } from '../../../src/policy/opa-cli.js';
import { person, REPO_POLICIES, toolCall } from './fixtures.js';
import { SQL_FIXTURE_QUERIES } from './sql-cases.js';

describe('tollgate.sql.analyze (PostgreSQL parser as a host builtin)', function () {
  this.timeout(60_000);
  before(() => loadSqlParser());

  it('reads quoting as PostgreSQL does: a second statement behind quotes is a second statement', () => {
    for (const q of [`SELECT 1 AS "'" ; DELETE FROM orders ; -- '`, `SELECT $$'$$ ; DELETE FROM orders ; -- '`, `SELECT $tag$;$tag$; DELETE FROM orders`]) {
      assert.deepEqual(analyzeSql(q).statements, ['select', 'delete'], q);
    }
    assert.deepEqual(analyzeSql('SELECT "weird;col" FROM orders').statements, ['select']);
    // E'' strings take backslash escapes; the statement stays one.
    assert.deepEqual(analyzeSql(`SELECT E'a\\' ; DELETE FROM t; --'`).statements, ['select']);
  });

  it('finds statements nested in CTEs and subqueries, and every function called', () => {
    const a = analyzeSql("WITH d AS (DELETE FROM t RETURNING id) SELECT (SELECT dblink_exec('h', 'x')), pg_catalog.pg_sleep(1), lo_import('/etc/passwd') FROM d");
    assert.deepEqual(a.statements, ['select']);
    assert.deepEqual(a.nested_statements, ['delete', 'select']);
    assert.deepEqual(a.functions, ['dblink_exec', 'lo_import', 'pg_catalog.pg_sleep']);
  });

  it('flags SELECT INTO, row locks and backslashes in standard strings', () => {
    assert.deepEqual(analyzeSql('SELECT * INTO copy FROM t').hazards, ['select_into']);
    assert.deepEqual(analyzeSql('SELECT * FROM t FOR SHARE').hazards, ['locking_clause']);
    assert.deepEqual(analyzeSql("SELECT '\\'\n' ; DELETE FROM t ; -- '").hazards, ['backslash_in_string']);
    assert.deepEqual(analyzeSql("SELECT E'\\n', $$\\$$").hazards, []);
  });

  it('fails closed with a reason: syntax errors, NUL bytes, oversize and deeply nested input', () => {
    assert.match(analyzeSql('SELEC 1').error!, /does not parse as PostgreSQL: syntax error at or near "SELEC"/);
    assert.match(analyzeSql('SELECT 1\u0000; DELETE FROM t').error!, /NUL/);
    assert.match(analyzeSql('SELECT ' + 'x'.repeat(DEFAULT_MAX_SQL_BYTES)).error!, /more than the 8192 bytes/);
    const deep = analyzeSql('SELECT ' + '('.repeat(20_000) + '1' + ')'.repeat(20_000), 64 * 1024);
    assert.equal(deep.ok, false);
    assert.match(deep.error!, /nests too deeply/);
    for (const a of [analyzeSql('SELEC 1'), deep]) assert.deepEqual([a.statements, a.functions], [[], []]);
  });

  it('takes time linear in the input (4x the columns: under 10x the time; quadratic would be 16x)', () => {
    const wide = (n: number): string => 'SELECT ' + Array.from({ length: n }, (_, i) => `c${i}`).join(', ') + ' FROM t';
    // The fastest of several runs: on a loaded machine the slow runs measure the neighbours.
    const time = (q: string): number => {
      analyzeSql(q, 256 * 1024);
      let best = Infinity;
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint();
        assert.equal(analyzeSql(q, 256 * 1024).ok, true);
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return best;
    };
    const small = time(wide(1000));
    const large = time(wide(4000));
    assert.ok(large < 10 * small + 5, `${small.toFixed(1)} ms for 1000 columns, ${large.toFixed(1)} ms for 4000`);
  });

  it('names statement kinds in snake_case', () => {
    assert.equal(statementKind('SelectStmt'), 'select');
    assert.equal(statementKind('CreateTableAsStmt'), 'create_table_as');
    assert.equal(statementKind('VariableSetStmt'), 'variable_set');
  });

  it('is declared in the capabilities opa is given (tollgate policy capabilities)', async () => {
    const caps = JSON.parse(await opaCapabilitiesJson()) as { builtins: Array<{ name: string; decl: { args: unknown[] } }> };
    const decl = caps.builtins.find((b) => b.name === 'tollgate.sql.analyze');
    assert.ok(decl, 'declared');
    assert.equal(decl.decl.args.length, 2);
    assert.ok(caps.builtins.some((b) => b.name === 'http.send'), 'the full set: opa test may use every OPA builtin');
  });

  it('agrees with the analyses the Rego tests mock it with (policies/lib/sql_fixtures_test.rego)', async () => {
    const run = await runOpa(['eval', '--format', 'json', '--capabilities', await opaCapabilitiesFile(), '-d', 'lib/sql_fixtures_test.rego', 'data.tollgate.lib.sql_fixtures.analyses'], { cwd: REPO_POLICIES });
    assert.equal(run.code, 0, run.stderr);
    const fixtures = (JSON.parse(run.stdout) as { result: Array<{ expressions: Array<{ value: Record<string, unknown> }> }> }).result[0]!.expressions[0]!.value;
    const stale = 'policies/lib/sql_fixtures_test.rego is stale: run node --import tsx test/support/gen-sql-fixtures.ts';
    assert.deepEqual(Object.keys(fixtures).sort(), [...SQL_FIXTURE_QUERIES].sort(), stale);
    for (const q of SQL_FIXTURE_QUERIES) assert.deepEqual(fixtures[q], analyzeSql(q), `${q}: ${stale}`);
  });
});

describe('the example policy judges run_sql with the parser, in WebAssembly', function () {
  this.timeout(120_000);
  let policy: WasmPolicy;
  before(async () => { policy = await loadPolicyFromDir(REPO_POLICIES); });
  const payments = person('payments');
  const decide = (query: string) => policy.evaluate(toolCall('run_sql', { query }, payments));

  it('refuses the exploit strings of issue 10, each with a reason', () => {
    const cases: Array<[string, RegExp]> = [
      [`SELECT 1 AS "'" ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      [`SELECT $$'$$ ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      [`SELECT 'a\\' ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      ["SELECT '\\'\n' ; DELETE FROM orders ; -- '", /standard_conforming_strings/],
      ["SELECT dblink_exec('host=db', 'DELETE FROM orders')", /dblink_exec\(\), which is not on the list of allowed functions/],
      ['SELECT pg_catalog.pg_sleep(10)', /pg_catalog\.pg_sleep\(\)/],
      ["SELECT lo_import('/etc/passwd')", /lo_import\(\)/],
      ['WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d', /contains a DELETE statement/],
      ['SELECT * FROM orders FOR UPDATE', /locks rows/],
      ['SELEC 1', /cannot be analysed: it does not parse as PostgreSQL/],
      ['SELECT 1\u0000; DELETE FROM orders', /NUL/],
    ];
    for (const [q, why] of cases) {
      const d = decide(q);
      assert.equal(d.allow, false, q);
      assert.ok(d.reasons.some((r) => why.test(r)), `${q}: ${d.reasons.join(' | ')}`);
    }
  });

  it('allows harmless reads the old lexical guard refused', () => {
    for (const q of ['SELECT "weird;col" FROM orders', "SELECT count(*), lower(name) FROM orders WHERE note = 'drop; delete' -- trailing note", 'SELECT 1']) {
      const d = decide(q);
      assert.equal(d.allow, true, `${q}: ${d.reasons.join(' | ')}`);
    }
  });
});
