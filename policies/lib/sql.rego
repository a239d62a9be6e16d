# METADATA
# title: SQL read-only guard
# description: |
#   A conservative lexical check that a query is one read-only SELECT (or WITH ... SELECT).
#   It refuses rather than parses: anything it cannot vouch for is a problem. Pair it with a
#   read-only database role; a lexical guard is a second line, not the only one.
package tollgate.lib.sql

# Statements and clauses that change data, schema or permissions. Words that are also common
# column or function names (comment, replace, do) are left out: they cannot start a statement
# here, since the query must begin with SELECT or WITH and cannot hold a second statement.
write_keywords := {
	"insert", "update", "delete", "merge", "upsert", "drop", "alter", "create", "truncate",
	"rename", "grant", "revoke", "call", "exec", "execute", "copy", "into", "lock", "vacuum",
	"attach", "detach", "pragma", "reindex", "cluster",
}

# The query lower-cased, with the contents of '...' string literals removed (so a literal such as
# 'delete me' is not mistaken for a statement); what remains is what the database executes.
code(q) := concat(" ", [part |
	some i, part in split(lower(q), "'")
	i % 2 == 0
])

# Why q is not one read-only SELECT; empty when it is.
read_only_problems(q) := {msg |
	some check in [
		[empty(q), "it is empty"],
		[not_select(q), "it does not start with SELECT or WITH"],
		[has_comment(q), "it contains a comment (-- or /*), which could hide a second statement"],
		[many_statements(q), "it has more than one statement"],
		[unterminated(q), "it has an unterminated string literal"],
	]
	check[0]
	msg := check[1]
} | {sprintf("it contains the keyword %s", [upper(word)]) |
	some word in words(code(q))
	word in write_keywords
}

read_only(q) if count(read_only_problems(q)) == 0

empty(q) if {
	trim_space(q) == ""
} else := false

not_select(q) if {
	not regex.match(`^\s*(select|with)\b`, code(q))
} else := false

has_comment(q) if {
	some marker in ["--", "/*"]
	contains(code(q), marker)
} else := false

many_statements(q) if {
	contains(trim_right(trim_space(code(q)), "; \t\n"), ";")
} else := false

unterminated(q) if {
	count(split(q, "'")) % 2 == 0
} else := false

words(s) := {w |
	some m in regex.find_all_string_submatch_n(`[a-z_][a-z0-9_$]*`, s, -1)
	w := m[0]
}

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
