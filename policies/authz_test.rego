package tollgate.authz_test

import data.tollgate.authz
import data.tollgate.lib.sql_fixtures

person(team, groups) := {
	"authenticated": true, "sub": "alice", "iss": "http://127.0.0.1:5556", "team": team,
	"groups": groups, "agent": "claude-code", "scopes": [], "delegation": [], "claims": {},
}

anonymous := {
	"authenticated": false, "sub": null, "iss": null, "team": null, "groups": [], "agent": null,
	"scopes": [], "delegation": [], "claims": {},
}

message(method, kind, who) := {
	"version": 1,
	"mcp": {
		"method": method, "kind": kind, "tool": null, "arguments": null, "resource": null, "prompt": null,
		"params": {}, "id": 1, "session_id": "s-1", "protocol_version": "2025-06-18", "server": "demo",
		"namespace": "default", "annotations": null, "batch": null,
	},
	"identity": who,
	"budget": {"budgets": [], "estimated_tokens": 0},
	"request": {"id": "r-1", "method": "POST", "path": "/mcp", "host": "127.0.0.1:10000", "scheme": "http", "headers": {}, "time_ns": 0},
}

call(tool, arguments, who) := object.union(message("tools/call", "request", who), {"mcp": {
	"tool": tool, "arguments": arguments,
	"params": {"name": tool, "arguments": arguments},
}})

transport(http_method, who) := object.union(message(null, "transport", who), {"request": {"method": http_method}})

# tollgate.sql.analyze runs in the host only: the tests use what the real parser answered.
decide(doc) := d if {
	d := authz.decision with input as doc with tollgate.sql.analyze as sql_fixtures.analyze
}

allowed(doc) if decide(doc).allow == true

denied_with(doc, fragment) if {
	d := decide(doc)
	d.allow == false
	some r in d.reasons
	contains(r, fragment)
}

payments := person("payments", [])

support := person("support", [])

readonly := person("readonly", [])

dba := person("support", ["dba"])

ticket := {"title": "Refund stuck", "body": "Customer cus_1001 waits for a refund.", "priority": "high"}

# --- session methods and transport -------------------------------------------------------------

test_session_methods_allowed_for_any_identity if {
	every m in ["initialize", "ping", "tools/list", "resources/list", "prompts/list"] {
		allowed(message(m, "request", readonly))
	}
	allowed(message("notifications/initialized", "notification", person(null, [])))
}

test_transport_get_and_delete_allowed if {
	allowed(transport("GET", readonly))
	allowed(transport("DELETE", payments))
}

test_other_methods_denied_with_reason if {
	denied_with(message("resources/read", "request", payments), "Method resources/read is not allowed")
	denied_with(message("prompts/get", "request", payments), "session_methods")
}

# --- identity ----------------------------------------------------------------------------------

test_unauthenticated_denied_everywhere if {
	denied_with(message("initialize", "request", anonymous), "no verified identity")
	denied_with(transport("GET", anonymous), "no verified identity")
	denied_with(call("search_docs", {"query": "refunds"}, anonymous), "bearer token")
}

# --- team allow-lists --------------------------------------------------------------------------

test_payments_uses_all_but_destructive if {
	allowed(call("search_docs", {"query": "refunds"}, payments))
	allowed(call("get_customer", {"customer_id": "cus_1001"}, payments))
	allowed(call("create_ticket", ticket, payments))
	allowed(call("run_sql", {"query": "SELECT id, total FROM orders WHERE id = 7"}, payments))
	denied_with(call("delete_records", {"table": "refunds", "where": "id = 7"}, payments), "needs membership of group dba")
}

test_support_reads_and_creates_tickets if {
	allowed(call("search_docs", {"query": "refunds"}, support))
	allowed(call("get_customer", {"customer_id": "cus_1002"}, support))
	allowed(call("create_ticket", ticket, support))
	denied_with(call("run_sql", {"query": "SELECT 1"}, support), "Team support may not use tool run_sql (a query tool)")
	denied_with(call("run_sql", {"query": "SELECT 1"}, support), "It may use: create_ticket, get_customer, search_docs.")
}

test_readonly_team_reads_only if {
	allowed(call("search_docs", {"query": "refunds"}, readonly))
	denied_with(call("create_ticket", ticket, readonly), "Team readonly may not use tool create_ticket (a write tool)")
	denied_with(call("create_ticket", ticket, readonly), "It may use: get_customer, search_docs.")
}

test_unknown_or_missing_team_reads_only if {
	allowed(call("get_customer", {"customer_id": "cus_1001"}, person("marketing", [])))
	denied_with(call("create_ticket", ticket, person("marketing", [])), "Identities without a known team (yours: marketing)")
	allowed(call("search_docs", {"query": "x"}, person(null, [])))
	denied_with(call("run_sql", {"query": "SELECT 1"}, person(null, [])), "(yours: none)")
}

# --- destructive tools -------------------------------------------------------------------------

test_dba_may_delete_with_a_real_condition if {
	allowed(call("delete_records", {"table": "refunds", "where": "id = 7"}, dba))
}

test_destructive_needs_dba_even_for_readonly if {
	denied_with(call("delete_records", {"table": "refunds", "where": "id = 7"}, readonly), "destructive")
}

test_delete_that_matches_every_row_denied if {
	denied_with(call("delete_records", {"table": "refunds", "where": "1=1"}, dba), "matches every row")
	denied_with(call("delete_records", {"table": "refunds", "where": "id = 7 OR 'a' = 'a'"}, dba), "matches every row")
	denied_with(call("delete_records", {"table": "refunds", "where": " "}, dba), "matches every row")
}

test_delete_bad_table_name_denied if {
	denied_with(call("delete_records", {"table": "refunds; drop table users", "where": "id = 7"}, dba), "a plain table name such as refunds")
}

test_change_window_blocks_destructive_outside_hours if {
	w := {"days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], "from_hour": 8, "to_hour": 18, "tz": "UTC"}
	in_call := call("delete_records", {"table": "refunds", "where": "id = 7"}, dba)

	# 2026-11-23 is a Monday: 10:00 UTC is inside, 20:00 UTC and Sunday noon are outside.
	monday_10 := time.parse_rfc3339_ns("2026-11-23T10:00:00Z")
	monday_20 := time.parse_rfc3339_ns("2026-11-23T20:00:00Z")
	sunday_12 := time.parse_rfc3339_ns("2026-11-22T12:00:00Z")
	authz.decision.allow with input as in_call with data.tollgate.config.change_window as w with time.now_ns as monday_10
	d := authz.decision with input as in_call with data.tollgate.config.change_window as w with time.now_ns as monday_20
	not d.allow
	some r in d.reasons
	contains(r, "change window (Monday, Tuesday, Wednesday, Thursday, Friday 08:00-18:00 UTC)")
	not authz.decision.allow with input as in_call with data.tollgate.config.change_window as w with time.now_ns as sunday_12
}

# --- tool catalogue ----------------------------------------------------------------------------

test_unknown_tool_denied if {
	denied_with(call("export_everything", {}, payments), "Tool export_everything of server demo has not been reviewed")
}

test_tool_of_trusted_server_classified_by_annotations if {
	trusted := {"wiki": {"trust_annotations": true}}
	read := object.union(call("lookup", {}, readonly), {"mcp": {"server": "wiki", "annotations": {"readOnlyHint": true}}})
	authz.decision.allow with input as read with data.tollgate.config.servers as trusted
	not authz.decision.allow with input as read
	wipe := object.union(call("purge", {}, readonly), {"mcp": {"server": "wiki", "annotations": {"readOnlyHint": false}}})
	d := authz.decision with input as wipe with data.tollgate.config.servers as trusted
	some r in d.reasons
	contains(r, "Tool purge is destructive")
}

# --- argument constraints ----------------------------------------------------------------------

test_ticket_priority_must_be_in_enum if {
	denied_with(
		call("create_ticket", object.union(ticket, {"priority": "critical"}), payments),
		"Argument priority of tool create_ticket must be one of: low, normal, high, urgent (got \"critical\").",
	)
}

test_ticket_title_required_and_bounded if {
	denied_with(call("create_ticket", object.remove(ticket, ["title"]), payments), "Argument title is required by tool create_ticket")
	denied_with(call("create_ticket", object.union(ticket, {"title": concat("", [x | some _ in numbers.range(1, 201); x := "a"])}), payments), "at most 200 characters")
	denied_with(call("create_ticket", object.union(ticket, {"title": 42}), payments), "must be a string, not a number")
}

test_customer_id_must_match_pattern if {
	denied_with(call("get_customer", {"customer_id": "1001"}, payments), "must be a customer id such as cus_1001 (got \"1001\")")
	denied_with(call("get_customer", {}, payments), "Argument customer_id is required")
}

test_run_sql_must_be_read_only if {
	denied_with(call("run_sql", {"query": "DELETE FROM orders"}, payments), "it is a DELETE statement; allowed: SELECT")
	denied_with(call("run_sql", {"query": "SELECT 1; DROP TABLE orders"}, payments), "it has 2 statements")
	denied_with(call("run_sql", {"query": "SELECT * INTO backup FROM orders"}, payments), "SELECT ... INTO")
	denied_with(call("run_sql", {"query": "SELECEL 1"}, payments), "it cannot be analysed")
	allowed(call("run_sql", {"query": "SELECT note FROM orders WHERE note = 'delete me; drop table x';"}, payments))
	allowed(call("run_sql", {"query": "WITH t AS (SELECT 1 AS n) SELECT n FROM t"}, payments))
	allowed(call("run_sql", {"query": "SELECT \"weird;col\" FROM orders"}, payments))
}

test_run_sql_exploits_of_issue_10 if {
	denied_with(call("run_sql", {"query": `SELECT 1 AS "'" ; DELETE FROM orders ; -- '`}, payments), "it has 2 statements")
	denied_with(call("run_sql", {"query": `SELECT $$'$$ ; DELETE FROM orders ; -- '`}, payments), "it has 2 statements")
	denied_with(call("run_sql", {"query": `SELECT 'a\' ; DELETE FROM orders ; -- '`}, payments), "it has 2 statements")
	denied_with(call("run_sql", {"query": "SELECT dblink_exec('host=db', 'DELETE FROM orders')"}, payments), "dblink_exec()")
	denied_with(call("run_sql", {"query": "SELECT pg_catalog.pg_sleep(10)"}, payments), "pg_catalog.pg_sleep()")
}

test_credentials_in_free_text_denied if {
	leaked := object.union(ticket, {"body": "use key AKIAABCDEFGHIJKLMNOP please"})
	denied_with(call("create_ticket", leaked, payments), "Argument body contains what looks like an AWS access key id")
}

test_credential_fields_are_masked_not_denied if {
	d := decide(call("search_docs", {"query": "refunds", "api_key": "k-123", "auth": {"password": "hunter2"}}, payments))
	d.allow
	d.mask == ["/input/mcp/arguments/api_key", "/input/mcp/arguments/auth", "/input/mcp/arguments/auth/password"]
}

test_sql_query_is_not_masked if {
	d := decide(call("run_sql", {"query": "SELECT 1"}, payments))
	d.allow
	d.mask == []
}

test_unknown_constraint_kind_refuses if {
	tools := {"search_docs": {"class": "read", "args": {"query": {"max_len": 10}}}}
	d := authz.decision with input as call("search_docs", {"query": "x"}, payments) with data.tollgate.config.servers.demo.tools as tools
	not d.allow
	some r in d.reasons
	contains(r, "unknown constraint \"max_len\"")
}

# --- decision extras ---------------------------------------------------------------------------

test_budget_warning_header if {
	low := object.union(call("search_docs", {"query": "x"}, payments), {"budget": {"estimated_tokens": 3, "budgets": [
		{"name": "payments-daily", "limit": 1000, "used": 950, "remaining": 50},
		{"name": "agent-hourly", "limit": 1000, "used": 10, "remaining": 990},
	]}})
	d := decide(low)
	d.allow
	d.headers == {"x-tollgate-budget-warning": "budget payments-daily has 50 of 1000 tokens left"}
	decide(call("search_docs", {"query": "x"}, payments)).headers == {}
}

test_allowed_decision_has_no_reasons if {
	d := decide(call("search_docs", {"query": "x"}, payments))
	d.reasons == set()
}

# --- tools/list filtering (input.mcp.listing) ---------------------------------------------------

# The annotations the demo server declares in tools/list.
demo_annotations := {
	"search_docs": {"readOnlyHint": true, "openWorldHint": false},
	"get_customer": {"readOnlyHint": true},
	"create_ticket": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false},
	"delete_records": {"destructiveHint": true, "idempotentHint": true},
	"run_sql": {"readOnlyHint": false, "openWorldHint": false},
}

# What Tollgate asks for one listed tool: a tools/call of it without arguments, marked as a listing.
listed(tool, who) := object.union(message("tools/call", "request", who), {"mcp": {
	"tool": tool, "arguments": null, "params": {"name": tool},
	"annotations": object.get(demo_annotations, tool, null), "listing": true,
}})

# The demo tools a tools/list shows to `who`.
visible_tools(who) := {tool | some tool, _ in demo_annotations; allowed(listed(tool, who))}

test_listing_support_sees_reads_and_tickets if {
	visible_tools(support) == {"get_customer", "search_docs", "create_ticket"}
}

test_listing_follows_each_team_grant if {
	visible_tools(payments) == {"get_customer", "search_docs", "create_ticket", "run_sql"}
	visible_tools(readonly) == {"get_customer", "search_docs"}
	visible_tools(person("marketing", [])) == {"get_customer", "search_docs"}
}

test_listing_destructive_only_for_dba if {
	"delete_records" in visible_tools(dba)
	visible_tools(dba) == {"get_customer", "search_docs", "create_ticket", "delete_records"}
	denied_with(listed("delete_records", payments), "needs membership of group dba")
}

test_listing_unauthenticated_sees_nothing if {
	visible_tools(anonymous) == set()
	denied_with(listed("search_docs", anonymous), "no verified identity")
}

test_listing_never_trips_argument_rules if {
	# Every demo tool has required arguments: a real call without them is denied, a listing is not.
	every tool, _ in demo_annotations {
		d := decide(listed(tool, dba_payments))
		d.allow
		d.reasons == set()
		d.mask == []
	}
	denied_with(call("search_docs", null, payments), "Argument query is required")
	not any_argument_reason(listed("run_sql", support))
}

dba_payments := person("payments", ["dba"])

any_argument_reason(doc) if {
	some r in decide(doc).reasons
	startswith(r, "Argument ")
}

test_listing_ignores_the_change_window if {
	w := {"days": ["Monday"], "from_hour": 8, "to_hour": 9, "tz": "UTC"}
	sunday_12 := time.parse_rfc3339_ns("2026-11-22T12:00:00Z")
	authz.decision.allow with input as listed("delete_records", dba) with data.tollgate.config.change_window as w with time.now_ns as sunday_12
	not authz.decision.allow with input as call("delete_records", {"table": "refunds", "where": "id = 7"}, dba) with data.tollgate.config.change_window as w with time.now_ns as sunday_12
}

test_listing_of_tools_outside_the_catalogue if {
	# A server whose annotations the policy trusts: its tools are classified by what it declares.
	trusted := {"wiki": {"trust_annotations": true, "tools": {}}}
	wiki_read := object.union(listed("lookup", readonly), {"mcp": {"server": "wiki", "annotations": {"readOnlyHint": true}}})
	authz.decision.allow with input as wiki_read with data.tollgate.config.servers as trusted
	wiki_purge := object.union(listed("purge", readonly), {"mcp": {"server": "wiki", "annotations": {"readOnlyHint": false}}})
	d := authz.decision with input as wiki_purge with data.tollgate.config.servers as trusted
	some r in d.reasons
	contains(r, "Tool purge is destructive")

	# Without that choice in data, the same declarations count for nothing: hidden and refused.
	denied_with(wiki_read, "Tool lookup of server wiki has not been reviewed")
	denied_with(listed("export_everything", payments), "not in the policy's tool catalogue")
}

test_unreviewed_tool_is_refused_whatever_it_declares if {
	# Issue 10, item 9: a new tool claiming to be harmless is not listed to, nor callable by, payments.
	harmless := {"readOnlyHint": false, "destructiveHint": false}
	new_tool := object.union(call("export_ledger", {}, payments), {"mcp": {"annotations": harmless}})
	denied_with(new_tool, "Tool export_ledger of server demo has not been reviewed")
	denied_with(new_tool, "what server demo declares about its tools is not trusted")
	denied_with(object.union(listed("export_ledger", payments), {"mcp": {"annotations": harmless}}), "has not been reviewed")
	denied_with(object.union(listed("export_ledger", dba), {"mcp": {"annotations": {"readOnlyHint": true}}}), "has not been reviewed")
}

test_listing_must_be_exactly_true if {
	# Only Tollgate sets the flag, always as a boolean; anything else is judged as a real call.
	not_quite := object.union(listed("search_docs", payments), {"mcp": {"listing": "true"}})
	denied_with(not_quite, "Argument query is required")
}

# --- tool pinning (input.mcp.pin, when authz enforces pins) ------------------------------------

pinned(doc, status, findings) := object.union(doc, {"mcp": {"pin": {
	"status": status, "sha256": "1111111111111111", "approved_sha256": "2222222222222222",
	"findings": findings, "accepted_findings": false,
}}})

test_pinned_tools_only_when_approved if {
	allowed(pinned(call("search_docs", {"query": "x"}, payments), "approved", []))
	denied_with(pinned(call("search_docs", {"query": "x"}, payments), "changed", []), "changed since it was approved and awaits review")
	denied_with(pinned(listed("search_docs", payments), "new", []), "awaits review")
	denied_with(pinned(call("search_docs", {"query": "x"}, payments), "unverified", []), "List the tools")
	poisoned := [{"kind": "instruction", "severity": "block", "detail": "<important>", "offset": 0}]
	denied_with(pinned(listed("search_docs", payments), "approved", poisoned), "possibly poisoned (instruction)")

	# Without pinning in authz (no input.mcp.pin) nothing changes.
	allowed(call("search_docs", {"query": "x"}, payments))
}

test_pinning_settings_per_server if {
	auto := {"demo": object.union(data.tollgate.config.servers.demo, {"pins": {"new": "allow"}})}
	authz.decision.allow with input as pinned(call("search_docs", {"query": "x"}, payments), "new", []) with data.tollgate.config.servers as auto
	not authz.decision.allow with input as pinned(call("search_docs", {"query": "x"}, payments), "changed", []) with data.tollgate.config.servers as auto
}

test_listed_prompt_with_poisoned_description if {
	doc := object.union(message("prompts/get", "request", payments), {"mcp": {
		"prompt": "summarise", "listing": true,
		"findings": [{"kind": "invisible_unicode", "severity": "block", "detail": "U+200B", "offset": 4}],
	}})
	denied_with(doc, "The prompt summarise of server demo has a description the scanner flags as possibly poisoned (invisible_unicode)")
}
