# What tollgate.sql.analyze (the host builtin; opa cannot run it) returns for the SQL texts the Rego
# tests use, as the real parser answered. Tests mock the builtin with
# `with tollgate.sql.analyze as sql_fixtures.analyze`; test/unit/policy/sql-builtin.test.ts fails
# if this file and the parser ever disagree. A text not listed here has no analysis, which the
# library refuses, as it refuses a failing builtin.
package tollgate.lib.sql_fixtures

analyze(q, _) := analyses[q]

analyses := {
	"SELECT 1": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT id, total FROM orders WHERE id = 7": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT note FROM orders WHERE note = 'delete me; drop table x';": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": []},
	"WITH t AS (SELECT 1 AS n) SELECT n FROM t": {"ok": true, "error": null, "statements": ["select"], "nested_statements": ["select"], "functions": [], "hazards": []},
	"SELECT \"weird;col\" FROM orders": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT count(*), pg_catalog.lower(name) FROM orders WHERE created_at > now() - interval '1 day'": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": ["count", "now", "pg_catalog.lower"], "hazards": []},
	"SELECT * FROM t -- ; drop": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": []},
	"DELETE FROM orders": {"ok": true, "error": null, "statements": ["delete"], "nested_statements": [], "functions": [], "hazards": []},
	"UPDATE t SET a = 1": {"ok": true, "error": null, "statements": ["update"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT 1; DROP TABLE orders": {"ok": true, "error": null, "statements": ["select", "drop"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT * INTO backup FROM orders": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": ["select_into"]},
	"SELECT * FROM orders FOR UPDATE": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": ["locking_clause"]},
	"WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d": {"ok": true, "error": null, "statements": ["select"], "nested_statements": ["delete"], "functions": [], "hazards": []},
	"SELECT 1 AS \"'\" ; DELETE FROM orders ; -- '": {"ok": true, "error": null, "statements": ["select", "delete"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT $$'$$ ; DELETE FROM orders ; -- '": {"ok": true, "error": null, "statements": ["select", "delete"], "nested_statements": [], "functions": [], "hazards": []},
	"SELECT 'a\\' ; DELETE FROM orders ; -- '": {"ok": true, "error": null, "statements": ["select", "delete"], "nested_statements": [], "functions": [], "hazards": ["backslash_in_string"]},
	"SELECT '\\'\n' ; DELETE FROM orders ; -- '": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": [], "hazards": ["backslash_in_string"]},
	"SELECT dblink_exec('host=db', 'DELETE FROM orders')": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": ["dblink_exec"], "hazards": []},
	"SELECT pg_catalog.pg_sleep(10)": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": ["pg_catalog.pg_sleep"], "hazards": []},
	"SELECT lo_import('/etc/passwd')": {"ok": true, "error": null, "statements": ["select"], "nested_statements": [], "functions": ["lo_import"], "hazards": []},
	"SELEC 1": {"ok": false, "error": "it does not parse as PostgreSQL: syntax error at or near \"SELEC\"", "statements": [], "nested_statements": [], "functions": [], "hazards": []},
	"": {"ok": false, "error": "it does not parse as PostgreSQL: Query cannot be empty", "statements": [], "nested_statements": [], "functions": [], "hazards": []},
}
