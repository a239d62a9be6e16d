package tollgate.lib.sql_test

import data.tollgate.lib.sql

test_plain_selects_are_read_only if {
	sql.read_only("SELECT * FROM orders")
	sql.read_only("  select id from orders where total > 10;")
	sql.read_only("WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent")
	sql.read_only("select updated_at, deleted_flag from orders")
	sql.read_only("select * from notes where body = 'please delete; drop table x'")
}

test_write_statements_are_refused if {
	"it contains the keyword INSERT" in sql.read_only_problems("INSERT INTO t VALUES (1)")
	"it does not start with SELECT or WITH" in sql.read_only_problems("INSERT INTO t VALUES (1)")
	"it contains the keyword UPDATE" in sql.read_only_problems("SELECT * FROM t FOR UPDATE")
	"it contains the keyword INTO" in sql.read_only_problems("select * into copy_t from t")
	"it contains the keyword DELETE" in sql.read_only_problems("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d")
}

test_hidden_statements_are_refused if {
	"it has more than one statement" in sql.read_only_problems("select 1; select 2")
	"it contains a comment (-- or /*), which could hide a second statement" in sql.read_only_problems("select 1 /* x */")
	"it contains a comment (-- or /*), which could hide a second statement" in sql.read_only_problems("select 1 -- x")
	"it has an unterminated string literal" in sql.read_only_problems("select 'abc")
	"it is empty" in sql.read_only_problems("   ")
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
