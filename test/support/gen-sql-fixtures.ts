/**
 * Regenerates policies/lib/sql_fixtures_test.rego from the real parser, for the SQL texts in
 * test/unit/policy/sql-cases.ts:  node --import tsx test/support/gen-sql-fixtures.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeSql, loadSqlParser } from '../../src/policy/builtin-sql.js';
import { runOpa } from '../../src/policy/opa-cli.js';
import { projectRoot } from '../../src/util/tools.js';
import { SQL_FIXTURE_QUERIES } from '../unit/policy/sql-cases.js';

await loadSqlParser();
const file = join(projectRoot(), 'policies', 'lib', 'sql_fixtures_test.rego');
// Keep the file's header comment and package line; replace the answers.
const head = readFileSync(file, 'utf8').split('\nanalyses := {')[0]!;
const body = SQL_FIXTURE_QUERIES.map((q) => `\t${JSON.stringify(q)}: ${JSON.stringify(analyzeSql(q))},`).join('\n');
writeFileSync(file, `${head}\nanalyses := {\n${body}\n}\n`);
const fmt = await runOpa(['fmt', '--write', file]);
if (fmt.code !== 0) throw new Error(fmt.stderr);
process.stdout.write(`wrote ${file} (${SQL_FIXTURE_QUERIES.length} texts)\n`);
