# The peer's stand-in for policies/lib/sql.rego. That library reads SQL with PostgreSQL's own
# grammar through tollgate.sql.analyze, a Tollgate host builtin that opa-envoy-plugin does not
# have (its policies fail to compile with "undefined function"). Here the same rule names decide
# with a word-level check instead: one statement, starting with SELECT, none of the words that
# change data. It decides the benchmark's workload as Tollgate does and costs the peer less than
# a parse would, so the comparison errs in the peer's favour.
package tollgate.lib.sql

import rego.v1

writes := {"insert", "update", "delete", "drop", "alter", "create", "truncate", "grant", "revoke", "into", "copy"}

words(q) := {w | some w in split(lower(replace(replace(q, "(", " "), ")", " ")), " ")}

read_only_problems(q) := {"it is not a single SELECT statement"} if {
	not startswith(lower(trim_space(q)), "select ")
} else := {"it has more than one statement"} if {
	contains(trim_right(trim_space(q), ";"), ";")
} else := {"it changes data"} if {
	count(words(q) & writes) > 0
} else := set()

problems(q, _) := read_only_problems(q)

# Same rule as policies/lib/sql.rego: empty, a constant truth or a self-comparison in any OR branch.
trivially_true(cond) if trim_space(cond) == ""

trivially_true(cond) if {
	some branch in split(lower(cond), " or ")
	trim(trim_space(branch), "() ") in {"true", "1", "not false", "1 = 1"}
}

trivially_true(cond) if {
	some branch in split(lower(cond), " or ")
	sides := split(trim(trim_space(branch), "() "), "=")
	count(sides) == 2
	trim_space(sides[0]) == trim_space(sides[1])
	trim_space(sides[0]) != ""
}
