# METADATA
# title: Argument constraints
# description: |
#   Checks tool arguments against a declarative spec, one entry per argument:
#   {"required": true, "type": "string", "enum": [...], "pattern": "^re2$", "hint": "...",
#    "min_length": n, "max_length": n, "min": n, "max": n, "path_prefix": [...],
#    "sql": "read_only" or {"statements": [...], "functions": [...]}, "sql_condition": "nontrivial"}.
#   problems(tool, args, spec) is the set of sentences saying what is wrong and how to fix it.
package tollgate.lib.args

import data.tollgate.lib.sql

problems(tool, args, spec) := {msg |
	some name, rule in spec
	some kind, param in rule
	some msg in check(kind, param, tool, name, args, rule)
} | {msg |
	some name, rule in spec
	some kind, _ in rule
	not kind in known_kinds
	msg := sprintf("The policy's rule for argument %s of tool %s has an unknown constraint \"%s\", so the call is refused. Policy owners: fix the constraint's name in data.", [name, tool, kind])
}

known_kinds := {
	"required", "type", "enum", "pattern", "hint", "description", "min_length", "max_length",
	"min", "max", "path_prefix", "sql", "sql_condition",
}

# Each check yields a set of messages (empty when the argument passes or is absent).
check("required", true, tool, name, args, _) := {sprintf("Argument %s is required by tool %s. Add it and try again.", [name, tool])} if {
	not has(args, name)
} else := set()

check("type", want, tool, name, args, _) := {sprintf("Argument %s of tool %s must be a %s, not a %s.", [name, tool, want, type_name(args[name])])} if {
	has(args, name)
	type_name(args[name]) != want
} else := set()

check("enum", allowed, tool, name, args, _) := {sprintf("Argument %s of tool %s must be one of: %s (got %s).", [name, tool, concat(", ", allowed), shown(args[name])])} if {
	has(args, name)
	not args[name] in allowed
} else := set()

check("pattern", re, tool, name, args, rule) := {sprintf("Argument %s of tool %s must be %s (got %s).", [name, tool, object.get(rule, "hint", concat("", ["a string matching ", re])), shown(args[name])])} if {
	has(args, name)
	not matches(args[name], re)
} else := set()

check("min_length", n, tool, name, args, _) := {sprintf("Argument %s of tool %s must be at least %d characters long.", [name, tool, n])} if {
	is_string(args[name])
	count(args[name]) < n
} else := set()

check("max_length", n, tool, name, args, _) := {sprintf("Argument %s of tool %s must be at most %d characters long (it has %d). Shorten it.", [name, tool, n, count(args[name])])} if {
	is_string(args[name])
	count(args[name]) > n
} else := set()

check("min", n, tool, name, args, _) := {sprintf("Argument %s of tool %s must be at least %v.", [name, tool, n])} if {
	is_number(args[name])
	args[name] < n
} else := set()

check("max", n, tool, name, args, _) := {sprintf("Argument %s of tool %s must be at most %v.", [name, tool, n])} if {
	is_number(args[name])
	args[name] > n
} else := set()

check("path_prefix", prefixes, tool, name, args, _) := {sprintf("Argument %s of tool %s must be a path under %s, without \"..\".", [name, tool, concat(" or ", prefixes)])} if {
	has(args, name)
	not path_under(args[name], prefixes)
} else := set()

check("sql", "read_only", tool, name, args, _) := {sprintf("Argument %s of tool %s must be a single read-only SELECT statement: %s. Rewrite it as a SELECT; changes to data go through a reviewed migration.", [name, tool, why]) |
	is_string(args[name])
	some why in sql.read_only_problems(args[name])
}

# An allow-list of its own: {"statements": [...], "functions": [...], "hazards": [...], "max_statements": n, "max_bytes": n}.
check("sql", allow, tool, name, args, _) := {sprintf("Argument %s of tool %s is refused by its SQL rule: %s.", [name, tool, why]) |
	is_string(args[name])
	some why in sql.problems(args[name], allow)
} if is_object(allow)

check("sql_condition", "nontrivial", tool, name, args, _) := {sprintf("Argument %s of tool %s must narrow down the rows: \"%s\" matches every row. Give a condition on a key column.", [name, tool, args[name]])} if {
	is_string(args[name])
	sql.trivially_true(args[name])
} else := set()

# Keys that describe the rule rather than check something.
check("hint", _, _, _, _, _) := set()

check("description", _, _, _, _, _) := set()

has(args, name) if {
	is_object(args)
	object.get(args, name, null) != null
}

matches(value, re) if {
	is_string(value)
	regex.match(re, value)
}

# True if value is a relative or absolute path under one of the prefixes, with no ".." segment.
path_under(value, prefixes) if {
	is_string(value)
	not ".." in split(value, "/")
	some p in prefixes
	startswith(value, p)
}

# A value as it appears in a reason: JSON, cut short so reasons stay readable.
shown(v) := s if {
	j := json.marshal(v)
	count(j) <= 60
	s := j
} else := concat("", [substring(json.marshal(v), 0, 57), "..."])
