package tollgate.lib.tools_test

import data.tollgate.lib.tools

catalogue := {
	"lookup": {"class": "read"},
	"write_it": {"class": "write"},
	"wipe": {"class": "destructive"},
}

test_class_from_catalogue if {
	tools.class_of(catalogue, "lookup", null) == "read"
	tools.class_of(catalogue, "wipe", {"readOnlyHint": true}) == "destructive"
}

test_class_from_annotations if {
	tools.class_of(catalogue, "other", {"readOnlyHint": true}) == "read"
	tools.class_of(catalogue, "other", {"readOnlyHint": false, "destructiveHint": false}) == "write"
	tools.class_of(catalogue, "other", {"readOnlyHint": false}) == "destructive"
	tools.class_of(catalogue, "other", {}) == "destructive"
}

test_class_unknown_without_catalogue_or_annotations if {
	tools.class_of(catalogue, "other", null) == "unknown"
}

test_grant_by_class if {
	tools.grants({"classes": ["read"]}, "lookup", "read")
	not tools.grants({"classes": ["read"]}, "write_it", "write")
}

test_grant_by_tool_name if {
	tools.grants({"classes": ["read"], "tools": ["write_it"]}, "write_it", "write")
}

test_deny_list_wins if {
	not tools.grants({"classes": ["read"], "deny_tools": ["lookup"]}, "lookup", "read")
}

test_empty_grant_grants_nothing if {
	not tools.grants({}, "lookup", "read")
}

test_grant_for_known_and_unknown_team if {
	teams := {"a": {"classes": ["write"]}}
	fallback := {"classes": ["read"]}
	tools.grant_for(teams, fallback, "a") == {"classes": ["write"]}
	tools.grant_for(teams, fallback, "zzz") == fallback
	tools.grant_for(teams, fallback, null) == fallback
}

test_allowed_names_sorted if {
	tools.allowed_names(catalogue, {"classes": ["read", "destructive"]}) == ["lookup", "wipe"]
	tools.allowed_names(catalogue, {}) == []
}

test_in_any_group if {
	tools.in_any_group({"groups": ["x", "dba"]}, ["dba"])
	not tools.in_any_group({"groups": ["x"]}, ["dba"])
	not tools.in_any_group({}, ["dba"])
}
