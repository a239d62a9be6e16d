# METADATA
# title: Tollgate example policy for the demo MCP server
# description: |
#   Who may call which tool with which arguments. Configuration (teams, tool catalogue, argument
#   constraints) lives in data.json under data.tollgate.config; the reusable pieces are in lib/.
#   Contract: data.tollgate.authz.decision = {allow, reasons, headers, mask} (policies/README.md).
package tollgate.authz

import data.tollgate.config
import data.tollgate.lib.args
import data.tollgate.lib.pins
import data.tollgate.lib.secrets
import data.tollgate.lib.time as window
import data.tollgate.lib.tools

default decision := {"allow": false, "reasons": ["The policy could not decide this call, so it is denied. Policy owners: check policies/authz.rego."]}

# The denials are computed once and shared: in WebAssembly every reference to a rule evaluates it
# again, and they are the costly part of the policy.
decision := {"allow": ok, "reasons": why, "headers": headers, "mask": mask} if {
	found := denials
	ok := permits(granted_flag, found)
	why := explain(ok, found)
}

# A plain boolean view of the same decision, for tools that ask data.tollgate.authz.allow.
default allow := false

allow := decision.allow

granted_flag if granted

else := false

permits(true, found) if count(found) == 0

else := false

permits(false, _) := false

explain(true, _) := set()

explain(false, found) := found if count(found) > 0

explain(false, found) := {"No rule in the policy grants this call. Ask the policy owners to allow it."} if count(found) == 0

identity := input.identity

mcp := input.mcp

authenticated if identity.authenticated == true

# Tollgate filters tools/list by asking this policy, for each listed tool, whether it would allow
# a tools/call of it: input.mcp.listing is true then, and the call has no arguments (null). Who
# may call which tool applies as for a real call; what is only known at call time (arguments,
# credentials in them, the change window) does not. Absent on real calls.
listing if mcp.listing == true

# --- what is granted ---------------------------------------------------------------------------

# Session housekeeping and listings: any verified identity.
granted if {
	authenticated
	session_method
}

# GET (open the SSE stream) and DELETE (end the session) carry no JSON-RPC method.
granted if {
	authenticated
	mcp.kind == "transport"
	mcp.method == null
}

granted if {
	authenticated
	mcp.method == "tools/call"
	tool_granted
}

session_method if mcp.method in config.session_methods

session_method if startswith(mcp.method, "notifications/")

server_tools := object.get(config.servers, [mcp.server, "tools"], {})

tool := object.get(server_tools, mcp.tool, {})

server_config := object.get(config.servers, mcp.server, {})

# Trusting what a server says about its tools (annotations) is a per-server choice in data; off
# unless data.tollgate.config.servers.<name>.trust_annotations is true.
trust_annotations := object.get(server_config, "trust_annotations", false) == true

tool_class := tools.class_of(server_tools, mcp.tool, mcp.annotations, trust_annotations)

team_grant := tools.grant_for(config.teams, config.fallback_grant, identity.team)

tool_granted if {
	tool_class != "destructive"
	tools.grants(team_grant, mcp.tool, tool_class)
}

tool_granted if {
	tool_class == "destructive"
	tools.in_any_group(identity, config.destructive_groups)
}

# --- why not -----------------------------------------------------------------------------------

denials contains "The call has no verified identity. Send a bearer token issued for this MCP server (tollgate token prints one for the local mesh)." if {
	not authenticated
}

denials contains msg if {
	authenticated
	not granted_method
	msg := sprintf("Method %s is not allowed by this policy. Ask the policy owners to add it to data.tollgate.config.session_methods if clients need it.", [method_name])
}

granted_method if session_method

granted_method if mcp.method == "tools/call"

granted_method if {
	mcp.kind == "transport"
	mcp.method == null
}

method_name := mcp.method if is_string(mcp.method)

else := sprintf("(none, HTTP %s)", [input.request.method])

# Unreviewed tools are hidden from listings and refused: a tool a server starts offering is not
# usable until someone reviewed it and added it to the catalogue.
denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	tool_class == "unreviewed"
	msg := sprintf("Tool %s of server %s has not been reviewed: it is not in the policy's tool catalogue%s, so nobody may call it yet. Ask the policy owners to review it and add it to data.tollgate.config.servers.%s.tools.", [mcp.tool, mcp.server, untrusted_note, mcp.server])
}

untrusted_note := "" if trust_annotations

else := sprintf(" and what server %s declares about its tools is not trusted (trust_annotations is not set for it)", [mcp.server])

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	tool_class == "destructive"
	not tools.in_any_group(identity, config.destructive_groups)
	msg := sprintf("Tool %s is destructive (its changes cannot be undone) and needs membership of group %s. Ask a member of %s to run it, or request membership.", [mcp.tool, concat(" or ", config.destructive_groups), concat(" or ", config.destructive_groups)])
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	not tool_class in {"unreviewed", "destructive"}
	not tools.grants(team_grant, mcp.tool, tool_class)
	msg := sprintf("%s may not use tool %s (a %s tool). %s Ask your team lead to request access.", [who, mcp.tool, tool_class, may_use])
}

who := sprintf("Team %s", [identity.team]) if {
	is_string(identity.team)
	config.teams[identity.team]
} else := sprintf("Identities without a known team (yours: %s)", [team_label])

team_label := identity.team if is_string(identity.team)

else := "none"

may_use := sprintf("It may use: %s.", [concat(", ", names)]) if {
	names := tools.allowed_names(server_tools, team_grant)
	count(names) > 0
} else := "It may use no tools of this server."

# Tool pinning (when authz enforces it, input.mcp.pin is set): a tool whose definition is not the
# approved one, or whose description the scanner flags, is hidden from listings and refused, also
# for callers holding an old tool list. Per-server settings: data.tollgate.config.servers.<name>.pins.
denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	is_object(mcp.pin)
	some msg in pins.problems(mcp.pin, mcp.tool, mcp.server, object.get(server_config, "pins", {}))
}

# Listed prompts and resources whose descriptions the scanner flags (input.mcp.findings).
denials contains msg if {
	authenticated
	is_array(mcp.findings)
	what := {"prompts/get": "prompt", "resources/read": "resource"}[mcp.method]
	name := object.get(mcp, what, "")
	some msg in pins.described_problems(mcp.findings, what, name, mcp.server, object.get(server_config, "pins", {}))
}

# Argument constraints apply to everyone, including groups that may call destructive tools.
denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	not listing
	some msg in args.problems(mcp.tool, object.get(mcp, "arguments", {}), object.get(tool, "args", {}))
}

# Credentials pasted into arguments are refused: they would reach the tool and its logs.
denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	not listing
	some [path, kind] in secrets.secret_value_findings(object.get(mcp, "arguments", {}))
	not path in secrets.secret_key_paths(object.get(mcp, "arguments", {}))
	msg := sprintf("Argument %s contains what looks like %s. Remove the credential; tools must not receive secrets in free text.", [trim_prefix(path, "/input/mcp/arguments/"), kind])
}

# An optional change window for destructive tools (data.tollgate.config.change_window). Listings
# still show such tools to those who may run them: a tool list that changed with the clock would
# be stale in every client that cached it, and a call outside the window says when to come back.
denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	not listing
	tool_class == "destructive"
	w := config.change_window
	not window.in_window(time.now_ns(), w)
	msg := sprintf("Destructive tools may only run during the change window (%s). Try again then, or ask for an emergency change.", [window.describe(w)])
}

# --- extras on the decision --------------------------------------------------------------------

# Credentials by field name are kept out of the decision log (the call itself may need them).
mask := sort(secrets.secret_key_paths(object.get(mcp, "arguments", {})))

# A heads-up header when a budget is nearly spent (the hard cutoff is Tollgate's own).
headers := {"x-tollgate-budget-warning": concat("; ", warnings)} if {
	warnings := [sprintf("budget %s has %d of %d tokens left", [b.name, b.remaining, b.limit]) |
		some b in object.get(input, ["budget", "budgets"], [])
		b.limit > 0
		b.remaining / b.limit < config.budget_warning_ratio
	]
	count(warnings) > 0
} else := {}
