# METADATA
# title: SQL argument checks
# description: |
#   Judges SQL text by what PostgreSQL's own parser makes of it (the host builtin
#   tollgate.sql.analyze), against an allow-list of statement kinds and of functions. Quotes,
#   dollar quotes, comments and escapes are read as the database reads them, so a second statement
#   cannot hide in a literal and a harmless identifier such as "weird;col" is not mistaken for one.
#   Anything the parser cannot read is refused. Pair it with a read-only database role: a policy
#   check is a second line, not the only one.
package tollgate.lib.sql

# One SELECT (subqueries and CTEs may only select too), calling only functions that read.
read_only_allow := {
	"statements": ["select"],
	"max_statements": 1,
	"functions": read_functions,
	"hazards": [],
	"max_bytes": 8192,
}

# Functions without side effects that reports commonly use. Anything else (dblink_exec, pg_sleep,
# lo_import, pg_read_file, set_config, nextval, ...) is refused until a policy owner adds it.
# pg_catalog.f is the same function as f.
read_functions := [
	"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg", "jsonb_agg", "bool_and", "bool_or",
	"coalesce", "nullif", "greatest", "least", "lower", "upper", "length", "char_length", "substr", "substring",
	"btrim", "ltrim", "rtrim", "trim", "replace", "split_part", "strpos", "position", "left", "right", "concat", "concat_ws",
	"round", "floor", "ceil", "ceiling", "abs", "trunc", "mod", "power", "sqrt",
	"now", "date_trunc", "date_part", "extract", "age", "to_char", "to_date", "to_timestamp", "make_date", "make_interval",
	"row_number", "rank", "dense_rank", "lag", "lead", "first_value", "last_value", "ntile", "percentile_cont",
	"jsonb_build_object", "json_build_object", "jsonb_extract_path_text", "json_extract_path_text", "timezone",
]

# What the parser says about q; when the builtin itself fails (bad options), an analysis that
# refuses.
analysis(q, allow) := a if {
	a := tollgate.sql.analyze(q, {"max_bytes": object.get(allow, "max_bytes", 8192)})
} else := {"ok": false, "error": "the SQL analyser failed on it", "statements": [], "nested_statements": [], "functions": [], "hazards": []}

# Why q is not allowed by `allow` ({"statements", "max_statements", "functions", "hazards",
# "max_bytes"}; docs/policy-authoring.md); empty when it is.
problems(q, allow) := {msg |
	a := analysis(q, allow)
	some msg in analysis_problems(a, allow)
}

analysis_problems(a, _) := {sprintf("it cannot be analysed: %s", [a.error])} if not a.ok

analysis_problems(a, allow) := ps if {
	a.ok
	ps := (statement_problems(a, allow) | function_problems(a, allow)) | hazard_problems(a, allow)
}

statement_problems(a, allow) := {"it holds no statement"} if count(a.statements) == 0

else := {sprintf("it has %d statements; send one at a time", [count(a.statements)])} if {
	count(a.statements) > object.get(allow, "max_statements", 1)
} else := {sprintf("it is a %s statement; allowed: %s", [upper(kind), allowed_kinds(allow)]) |
	some kind in a.statements
	not kind in allow.statements
} | {sprintf("it contains a %s statement inside it; allowed: %s", [upper(kind), allowed_kinds(allow)]) |
	some kind in a.nested_statements
	not kind in allow.statements
}

allowed_kinds(allow) := concat(", ", [upper(k) | some k in allow.statements])

function_problems(a, allow) := {sprintf("it calls %s(), which is not on the list of allowed functions", [f]) |
	some f in a.functions
	not function_allowed(f, object.get(allow, "functions", []))
}

function_allowed(f, allowed) if f in allowed

function_allowed(f, allowed) if {
	startswith(f, "pg_catalog.")
	trim_prefix(f, "pg_catalog.") in allowed
}

hazard_problems(a, allow) := {hazard_message(h) |
	some h in a.hazards
	not h in object.get(allow, "hazards", [])
}

hazard_message("select_into") := "it is SELECT ... INTO, which creates a table"

hazard_message("locking_clause") := "it locks rows (FOR UPDATE / FOR SHARE)"

hazard_message("backslash_in_string") := "it has a backslash in a '...' literal, which servers with standard_conforming_strings off read differently; use E'...' or $$...$$"

hazard_message(h) := sprintf("it uses %s", [h]) if not h in {"select_into", "locking_clause", "backslash_in_string"}

read_only_problems(q) := problems(q, read_only_allow)

read_only(q) if count(read_only_problems(q)) == 0

# A WHERE condition that matches every row: empty, a constant truth, a comparison of a thing with
# itself (1=1, 'a'='a', id = id), or any OR branch that is one of those.
trivially_true(cond) if trim_space(cond) == ""

trivially_true(cond) if {
	some branch in split(lower(cond), " or ")
	constant_truth(branch)
}

constant_truth(b) if trim(trim_space(b), "() ") in {"true", "1", "not false", "1 = 1"}

constant_truth(b) if {
	sides := split(trim(trim_space(b), "() "), "=")
	count(sides) == 2
	trim_space(sides[0]) == trim_space(sides[1])
	trim_space(sides[0]) != ""
}
