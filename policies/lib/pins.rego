# METADATA
# title: Tool pinning
# description: |
#   When authz enforces tool pins (docs/tool-pinning.md), input.mcp.pin says whether the tool's
#   current definition is the one an approver signed (approved), differs from it (changed), was
#   never approved (new) or has not been seen since authz started (unverified), with the scanner's
#   findings on its description and schema. problems(pin, tool, server, settings) says why a tool is
#   refused; settings are data.tollgate.config.servers.<name>.pins:
#   {"new", "changed", "findings", "instructions": "deny"|"allow"}, all "deny" by default.
package tollgate.lib.pins

setting(settings, key) := object.get(settings, key, "deny")

problems(pin, tool, server, settings) := ({msg |
	some msg in status_problems(pin, tool, server, settings)
} | {msg |
	some msg in finding_problems(pin, tool, server, settings)
}) | {msg |
	some msg in instruction_problems(object.get(pin, "server_findings", []), server, settings)
}

blocking_kinds(findings) := sort({f.kind | some f in findings; f.severity == "block"})

# The server's own instructions (initialize) steer the model around all its tools.
instruction_problems(findings, server, settings) := {sprintf("Server %s sent instructions the scanner flags as possibly poisoned (%s), so its tools are refused. Policy owners: review them, then set pins.instructions to \"allow\" for this server.", [server, concat(", ", kinds)])} if {
	setting(settings, "instructions") != "allow"
	kinds := blocking_kinds(findings)
	count(kinds) > 0
} else := set()

# A listed prompt or resource whose description carries blocking findings (input.mcp.findings).
described_problems(findings, what, name, server, settings) := {sprintf("The %s %s of server %s has a description the scanner flags as possibly poisoned (%s), so it is hidden and refused.", [what, name, server, concat(", ", kinds)])} if {
	setting(settings, "findings") != "allow"
	kinds := blocking_kinds(findings)
	count(kinds) > 0
} else := set()

status_problems(pin, tool, server, settings) := {sprintf("Tool %s of server %s awaits review: its definition has not been approved yet. It stays hidden and refused until a reviewer approves it (tollgate tools pending).", [tool, server])} if {
	pin.status == "new"
	setting(settings, "new") != "allow"
} else := {sprintf("Tool %s of server %s changed since it was approved and awaits review: its definition now hashes to %s, the approved one to %s. It stays hidden and refused until a reviewer approves the change (tollgate tools diff).", [tool, server, short(pin.sha256), short(pin.approved_sha256)])} if {
	pin.status == "changed"
	setting(settings, "changed") != "allow"
} else := {sprintf("Tollgate has not seen server %s list tool %s since it started, so it cannot tell whether the tool is the approved one. List the tools (tools/list), then call it again.", [server, tool])} if {
	pin.status == "unverified"
} else := set()

# Findings of severity "block" refuse the tool; "note" findings (links, the word "password") only
# show in `tollgate tools pending`.
finding_problems(pin, tool, server, settings) := {sprintf("Tool %s of server %s has a definition the scanner flags as possibly poisoned (%s), so it is refused until a reviewer accepts it.", [tool, server, concat(", ", kinds)])} if {
	not pin.accepted_findings
	setting(settings, "findings") != "allow"
	kinds := blocking_kinds(pin.findings)
	count(kinds) > 0
} else := set()

short(h) := substring(h, 0, 12) if is_string(h)

else := "(none)"
