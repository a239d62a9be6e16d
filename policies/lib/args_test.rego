package tollgate.lib.args_test

import data.tollgate.lib.args
import data.tollgate.lib.sql_fixtures

spec := {
	"name": {"required": true, "type": "string", "min_length": 2, "max_length": 5},
	"level": {"enum": ["low", "high"]},
	"id": {"pattern": "^u_[0-9]+$", "hint": "a user id such as u_1"},
	"code": {"pattern": "^[A-Z]+$"},
	"count": {"type": "number", "min": 1, "max": 10},
	"file": {"path_prefix": ["/srv/data/", "reports/"]},
	"sql": {"sql": "read_only"},
	"where": {"sql_condition": "nontrivial"},
}

problems(a) := ps if {
	ps := args.problems("t", a, spec) with tollgate.sql.analyze as sql_fixtures.analyze
}

test_valid_arguments_have_no_problems if {
	problems({"name": "abc", "level": "low", "id": "u_7", "code": "AB", "count": 3, "file": "reports/q1.csv", "sql": "SELECT 1", "where": "id = 3"}) == set()
}

test_absent_optional_arguments_are_fine if {
	problems({"name": "abc"}) == set()
}

test_required if {
	problems({}) == {"Argument name is required by tool t. Add it and try again."}
	problems(null) == {"Argument name is required by tool t. Add it and try again."}
	"Argument name is required by tool t. Add it and try again." in problems({"name": null})
}

test_type if {
	"Argument name of tool t must be a string, not a number." in problems({"name": 12})
	"Argument count of tool t must be a number, not a string." in problems({"name": "abc", "count": "3"})
}

test_lengths if {
	"Argument name of tool t must be at least 2 characters long." in problems({"name": "a"})
	"Argument name of tool t must be at most 5 characters long (it has 6). Shorten it." in problems({"name": "abcdef"})
}

test_enum if {
	"Argument level of tool t must be one of: low, high (got \"medium\")." in problems({"name": "abc", "level": "medium"})
}

test_pattern_with_and_without_hint if {
	"Argument id of tool t must be a user id such as u_1 (got \"x\")." in problems({"name": "abc", "id": "x"})
	"Argument code of tool t must be a string matching ^[A-Z]+$ (got \"ab\")." in problems({"name": "abc", "code": "ab"})
	"Argument code of tool t must be a string matching ^[A-Z]+$ (got 7)." in problems({"name": "abc", "code": 7})
}

test_numeric_range if {
	"Argument count of tool t must be at least 1." in problems({"name": "abc", "count": 0})
	"Argument count of tool t must be at most 10." in problems({"name": "abc", "count": 11})
}

test_path_prefix if {
	msg := "Argument file of tool t must be a path under /srv/data/ or reports/, without \"..\"."
	msg in problems({"name": "abc", "file": "/etc/passwd"})
	msg in problems({"name": "abc", "file": "reports/../secrets.txt"})
	not msg in problems({"name": "abc", "file": "/srv/data/x/y.json"})
}

test_sql_read_only if {
	some msg in problems({"name": "abc", "sql": "UPDATE t SET a = 1"})
	contains(msg, "must be a single read-only SELECT statement: it is a UPDATE statement")
}

test_sql_condition if {
	"Argument where of tool t must narrow down the rows: \"1 = 1\" matches every row. Give a condition on a key column." in problems({"name": "abc", "where": "1 = 1"})
}

test_long_values_are_shortened_in_reasons if {
	long := concat("", [x | some _ in numbers.range(1, 100); x := "z"])
	some msg in problems({"name": "abc", "level": long})
	contains(msg, "zzz...).")
}

test_unknown_constraint_kind_is_a_problem if {
	args.problems("t", {"a": 1}, {"a": {"maxlen": 3}}) == {"The policy's rule for argument a of tool t has an unknown constraint \"maxlen\", so the call is refused. Policy owners: fix the constraint's name in data."}
}

test_sql_with_its_own_allow_list if {
	custom := {"q": {"sql": {"statements": ["select", "delete"], "max_statements": 1, "functions": ["pg_sleep"]}}}
	ps := args.problems("t", {"q": "SELECT 1; DROP TABLE orders"}, custom) with tollgate.sql.analyze as sql_fixtures.analyze
	ps == {"Argument q of tool t is refused by its SQL rule: it has 2 statements; send one at a time."}
	ok := args.problems("t", {"q": "SELECT pg_catalog.pg_sleep(10)"}, custom) with tollgate.sql.analyze as sql_fixtures.analyze
	ok == set()
}
