# METADATA
# title: Decision-log masking (OPA's data.system.log.mask semantics)
# description: |
#   As in OPA, this rule sees the decision-log event as input: the policy input is input.input.
#   A string erases the field at that JSON pointer; an object {"op": "upsert", ...} replaces it.
package system.log

import data.tollgate.lib.secrets

# Reviewers need who called (sub, team, agent), not the caller's personal claims.
mask contains "/input/identity/claims/email"

mask contains "/input/identity/claims/name"

# Personal data in arguments is replaced rather than erased, so a reviewer sees it was there.
mask contains {"op": "upsert", "path": path, "value": "[personal data]"} if {
	some path in secrets.pii_paths(object.get(input.input.mcp, "arguments", {}))
}
