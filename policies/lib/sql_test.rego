package tollgate.lib.sql_test

import data.tollgate.lib.sql
import data.tollgate.lib.sql_fixtures

# tollgate.sql.analyze runs in the host only; these tests use what the real parser answered
# (sql_fixtures_test.rego) and check what the library makes of it.
problems(q) := ps if {
	ps := sql.read_only_problems(q) with tollgate.sql.analyze as sql_fixtures.analyze
}

read_only(q) if sql.read_only(q) with tollgate.sql.analyze as sql_fixtures.analyze

test_plain_selects_are_read_only if {
	read_only("SELECT 1")
	read_only("SELECT id, total FROM orders WHERE id = 7")
	read_only("SELECT note FROM orders WHERE note = 'delete me; drop table x';")
	read_only("WITH t AS (SELECT 1 AS n) SELECT n FROM t")
	read_only("SELECT count(*), pg_catalog.lower(name) FROM orders WHERE created_at > now() - interval '1 day'")
}

test_quoted_identifier_with_semicolon_is_one_select if {
	read_only("SELECT \"weird;col\" FROM orders")
}

test_comments_are_harmless_once_parsed if {
	read_only("SELECT * FROM t -- ; drop")
}

test_write_statements_are_refused if {
	problems("DELETE FROM orders") == {"it is a DELETE statement; allowed: SELECT"}
	problems("UPDATE t SET a = 1") == {"it is a UPDATE statement; allowed: SELECT"}
	problems("SELECT * INTO backup FROM orders") == {"it is SELECT ... INTO, which creates a table"}
	problems("SELECT * FROM orders FOR UPDATE") == {"it locks rows (FOR UPDATE / FOR SHARE)"}
	problems("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d") == {"it contains a DELETE statement inside it; allowed: SELECT"}
}

test_second_statement_behind_quotes_is_refused if {
	problems("SELECT 1; DROP TABLE orders") == {"it has 2 statements; send one at a time"}
	problems(`SELECT 1 AS "'" ; DELETE FROM orders ; -- '`) == {"it has 2 statements; send one at a time"}
	problems(`SELECT $$'$$ ; DELETE FROM orders ; -- '`) == {"it has 2 statements; send one at a time"}
	"it has 2 statements; send one at a time" in problems(`SELECT 'a\' ; DELETE FROM orders ; -- '`)
}

test_backslash_in_standard_string_is_refused if {
	# One statement to PostgreSQL's default lexer, two to a server with standard_conforming_strings off.
	problems("SELECT '\\'\n' ; DELETE FROM orders ; -- '") == {"it has a backslash in a '...' literal, which servers with standard_conforming_strings off read differently; use E'...' or $$...$$"}
}

test_side_effecting_functions_are_refused if {
	problems("SELECT dblink_exec('host=db', 'DELETE FROM orders')") == {"it calls dblink_exec(), which is not on the list of allowed functions"}
	problems("SELECT pg_catalog.pg_sleep(10)") == {"it calls pg_catalog.pg_sleep(), which is not on the list of allowed functions"}
	problems("SELECT lo_import('/etc/passwd')") == {"it calls lo_import(), which is not on the list of allowed functions"}
}

test_unparsable_sql_is_refused if {
	problems("SELEC 1") == {"it cannot be analysed: it does not parse as PostgreSQL: syntax error at or near \"SELEC\""}
	problems("") == {"it cannot be analysed: it does not parse as PostgreSQL: Query cannot be empty"}
}

test_no_analysis_is_refused if {
	# A failing builtin (or one that is missing) leaves no analysis: refused, never allowed.
	problems("not in the fixtures") == {"it cannot be analysed: the SQL analyser failed on it"}
}

test_custom_allow_list if {
	allow := {"statements": ["select", "delete"], "functions": ["pg_sleep"], "max_statements": 2}
	sql.problems("SELECT 1; DROP TABLE orders", allow) == {"it is a DROP statement; allowed: SELECT, DELETE"} with tollgate.sql.analyze as sql_fixtures.analyze
	sql.problems("SELECT pg_catalog.pg_sleep(10)", allow) == set() with tollgate.sql.analyze as sql_fixtures.analyze
	sql.problems("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", allow) == set() with tollgate.sql.analyze as sql_fixtures.analyze
}

test_trivially_true_conditions if {
	sql.trivially_true("")
	sql.trivially_true("1=1")
	sql.trivially_true("TRUE")
	sql.trivially_true("(1 = 1)")
	sql.trivially_true("id = id")
	sql.trivially_true("id = 4 or 'x'='x'")
	not sql.trivially_true("id = 4")
	not sql.trivially_true("created_at < '2020-01-01'")
}
