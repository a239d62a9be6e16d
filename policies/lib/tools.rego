# METADATA
# title: Tool catalogue and allow/deny lists
# description: |
#   Classifies a tool (read, write, query, destructive, unreviewed) from a catalogue, falling back
#   to the annotations the MCP server declared in tools/list only for servers the policy trusts,
#   and checks grants made of classes, tool names and explicit deny lists.
package tollgate.lib.tools

# The class of a tool: from the catalogue when listed there. A tool the catalogue does not list is
# "unreviewed", unless the policy trusts this server's annotations (an explicit, per-server choice:
# the MCP spec calls annotations untrusted unless the server is): then its class follows what the
# server declared, with the spec's defaults (destructiveHint defaults to true when readOnlyHint is
# false). A trusted server's tool that declares no annotations is still "unreviewed".
class_of(catalogue, name, _, _) := catalogue[name].class

class_of(catalogue, name, annotations, trusted) := "unreviewed" if {
	not catalogue[name]
	not trusted_annotations(annotations, trusted)
}

class_of(catalogue, name, annotations, trusted) := c if {
	not catalogue[name]
	trusted_annotations(annotations, trusted)
	c := annotation_class(annotations)
}

trusted_annotations(annotations, true) if is_object(annotations)

annotation_class(a) := "read" if {
	a.readOnlyHint == true
} else := "write" if {
	a.destructiveHint == false
} else := "destructive"

# A grant is {"classes": [...], "tools": [...], "deny_tools": [...]}; every key is optional.
grants(grant, name, class) if {
	grants_by_list(grant, name, class)
	not denied_by_list(grant, name)
}

grants_by_list(grant, _, class) if class in object.get(grant, "classes", [])

grants_by_list(grant, name, _) if name in object.get(grant, "tools", [])

denied_by_list(grant, name) if name in object.get(grant, "deny_tools", [])

# The grant for a team, or the fallback grant for identities without a known team.
grant_for(teams, fallback, team) := teams[team] if {
	is_string(team)
	teams[team]
} else := fallback

# Tool names of a catalogue that a grant allows, sorted (for reasons that say what is allowed).
allowed_names(catalogue, grant) := sort([name |
	some name, tool in catalogue
	grants(grant, name, tool.class)
])

# True if the identity belongs to at least one of the groups.
in_any_group(identity, groups) if {
	some g in object.get(identity, "groups", [])
	g in groups
}
