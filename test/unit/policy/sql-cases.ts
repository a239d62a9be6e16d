/**
 * SQL texts whose analyses policies/lib/sql_fixtures_test.rego holds for the Rego tests (opa test
 * cannot run the host builtin, so tests mock it with these). sql-builtin.test.ts checks that the
 * file says exactly what the real parser says, so the mocks cannot drift from the builtin.
 */
export const SQL_FIXTURE_QUERIES: readonly string[] = [
  'SELECT 1',
  'SELECT id, total FROM orders WHERE id = 7',
  "SELECT note FROM orders WHERE note = 'delete me; drop table x';",
  'WITH t AS (SELECT 1 AS n) SELECT n FROM t',
  'SELECT "weird;col" FROM orders',
  "SELECT count(*), pg_catalog.lower(name) FROM orders WHERE created_at > now() - interval '1 day'",
  'SELECT * FROM t -- ; drop',
  'DELETE FROM orders',
  'UPDATE t SET a = 1',
  'SELECT 1; DROP TABLE orders',
  'SELECT * INTO backup FROM orders',
  'SELECT * FROM orders FOR UPDATE',
  'WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d',
  // The exploits of issue 10: a second statement behind a quoted identifier, a dollar quote, a
  // backslash; side-effecting functions.
  `SELECT 1 AS "'" ; DELETE FROM orders ; -- '`,
  `SELECT $$'$$ ; DELETE FROM orders ; -- '`,
  `SELECT 'a\\' ; DELETE FROM orders ; -- '`,
  "SELECT '\\'\n' ; DELETE FROM orders ; -- '",
  "SELECT dblink_exec('host=db', 'DELETE FROM orders')",
  'SELECT pg_catalog.pg_sleep(10)',
  "SELECT lo_import('/etc/passwd')",
  'SELEC 1',
  '',
];
