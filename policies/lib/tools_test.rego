package tollgate.lib.tools_test

import data.tollgate.lib.tools

catalogue := {
	"lookup": {"class": "read"},
	"write_it": {"class": "write"},
	"wipe": {"class": "destructive"},
}

test_class_from_catalogue if {
	tools.class_of(catalogue, "lookup", null, false) == "read"
	tools.class_of(catalogue, "wipe", {"readOnlyHint": true}, true) == "destructive"
}

test_class_from_annotations_of_a_trusted_server if {
	tools.class_of(catalogue, "other", {"readOnlyHint": true}, true) == "read"
	tools.class_of(catalogue, "other", {"readOnlyHint": false, "destructiveHint": false}, true) == "write"
	tools.class_of(catalogue, "other", {"readOnlyHint": false}, true) == "destructive"
	tools.class_of(catalogue, "other", {}, true) == "destructive"
}

test_annotations_of_an_untrusted_server_count_for_nothing if {
	tools.class_of(catalogue, "other", {"readOnlyHint": true}, false) == "unreviewed"
	tools.class_of(catalogue, "other", {"destructiveHint": false}, false) == "unreviewed"
	tools.class_of(catalogue, "lookup", {"destructiveHint": true}, false) == "read"
}

test_class_unreviewed_without_catalogue_or_annotations if {
	tools.class_of(catalogue, "other", null, true) == "unreviewed"
	tools.class_of(catalogue, "other", null, false) == "unreviewed"
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
