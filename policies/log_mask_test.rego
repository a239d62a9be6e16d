package system.log_test

import data.system.log

event(arguments) := {"input": {
	"mcp": {"method": "tools/call", "tool": "create_ticket", "arguments": arguments},
	"identity": {"claims": {"email": "ada@example.com", "name": "Ada"}},
}}

test_personal_claims_erased if {
	m := log.mask with input as event({})
	"/input/identity/claims/email" in m
	"/input/identity/claims/name" in m
}

test_personal_data_in_arguments_upserted if {
	m := log.mask with input as event({"body": "call me at ada@example.com", "title": "hello"})
	{"op": "upsert", "path": "/input/mcp/arguments/body", "value": "[personal data]"} in m
	count([x | some x in m; is_object(x)]) == 1
}

test_no_arguments if {
	m := log.mask with input as {"input": {"mcp": {"method": "ping"}}}
	count(m) == 2
}
