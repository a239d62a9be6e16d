# METADATA
# title: Tollgate's example policy, written for opa-envoy-plugin (the benchmark peer)
# description: |
#   The same decisions as policies/authz.rego, the way opa-envoy-plugin's documentation has
#   policies written: the bearer JWT is verified in Rego with io.jwt.decode_verify against the
#   issuer's JWKS (data.bench.identity, written by the harness), and the JSON-RPC call is read
#   from input.parsed_body. The plugin names CheckRequest fields in lowerCamelCase, so the
#   route's server is input.attributes.contextExtensions.server. It loads next to policies/lib
#   and policies/data.json, so the tool catalogue, team grants, argument constraints and secret
#   detectors are Tollgate's own; only the input adapter and the token check differ. Single
#   JSON-RPC messages only (no batches). bench/main.ts checks, before timing anything, that
#   both engines decide every call of the workload alike.
package envoy.authz

import data.tollgate.config
import data.tollgate.lib.args
import data.tollgate.lib.secrets
import data.tollgate.lib.time as window
import data.tollgate.lib.tools

# --- identity: the bearer token, verified here -------------------------------------------------

bearer := token if {
	value := input.attributes.request.http.headers.authorization
	startswith(value, "Bearer ")
	token := substring(value, 7, -1)
}

# Signature (JWKS), issuer, audience, expiry and not-before, as Tollgate checks them.
claims := payload if {
	not data.bench.identity.jwt_authn
	[valid, header, payload] := io.jwt.decode_verify(bearer, {
		"cert": data.bench.identity.jwks,
		"iss": data.bench.identity.issuer,
		"aud": data.bench.identity.audience,
	})
	valid
	header.alg in data.bench.identity.algorithms
}

# Behind Envoy's jwt_authn filter (the configuration Istio users deploy), which has already
# checked signature, issuer, audience and expiry before ext_authz is called: only decode.
claims := payload if {
	data.bench.identity.jwt_authn
	[_, payload, _] := io.jwt.decode(bearer)
}

authenticated if is_string(claims.sub)

identity := {
	"authenticated": true,
	"sub": claims.sub,
	"team": object.get(claims, "team", null),
	"groups": object.get(claims, "groups", []),
	"agent": object.get(claims, "agent", null),
}

# --- the MCP call: JSON-RPC body and the route's context extensions ----------------------------

http := input.attributes.request.http

default rpc := {}

rpc := input.parsed_body if is_object(input.parsed_body)

mcp := {
	"method": object.get(rpc, "method", null),
	"kind": kind,
	"tool": object.get(rpc, ["params", "name"], null),
	"arguments": object.get(rpc, ["params", "arguments"], {}),
	"server": object.get(input.attributes, ["contextExtensions", "server"], "default"),
	"annotations": null,
}

kind := "transport" if {
	http.method in {"GET", "DELETE"}
} else := "notification" if {
	object.get(rpc, "id", null) == null
} else := "request"

# --- what is granted (policies/authz.rego) -----------------------------------------------------

default allow := false

allow if {
	granted
	count(denials) == 0
}

granted if {
	authenticated
	session_method
}

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

# As policies/authz.rego: servers' own tool annotations count only where the config trusts them.
trust_annotations := object.get(object.get(config.servers, mcp.server, {}), "trust_annotations", false) == true

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

denials contains "missing or invalid bearer token" if not authenticated

denials contains msg if {
	authenticated
	not granted_method
	msg := sprintf("Method %v is not allowed by this policy.", [mcp.method])
}

granted_method if session_method

granted_method if mcp.method == "tools/call"

granted_method if {
	mcp.kind == "transport"
	mcp.method == null
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	tool_class == "unknown"
	msg := sprintf("Tool %s is not in the catalogue of server %s.", [mcp.tool, mcp.server])
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	tool_class == "destructive"
	not tools.in_any_group(identity, config.destructive_groups)
	msg := sprintf("Tool %s is destructive and needs membership of group %s.", [mcp.tool, concat(" or ", config.destructive_groups)])
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	not tool_class in {"unknown", "destructive"}
	not tools.grants(team_grant, mcp.tool, tool_class)
	msg := sprintf("Team %v may not use tool %s (a %s tool).", [identity.team, mcp.tool, tool_class])
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	some msg in args.problems(mcp.tool, mcp.arguments, object.get(tool, "args", {}))
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	some [path, found] in secrets.secret_value_findings(mcp.arguments)
	not path in secrets.secret_key_paths(mcp.arguments)
	msg := sprintf("Argument %s contains what looks like %s.", [trim_prefix(path, "/input/mcp/arguments/"), found])
}

denials contains msg if {
	authenticated
	mcp.method == "tools/call"
	tool_class == "destructive"
	w := config.change_window
	not window.in_window(time.now_ns(), w)
	msg := sprintf("Destructive tools may only run during the change window (%s).", [window.describe(w)])
}

# --- the answer Envoy gets, shaped like Tollgate's ---------------------------------------------

default rpc_id := null

rpc_id := rpc.id

# Allowed: the caller's token never goes upstream.
result := {
	"allowed": true,
	"headers": {"x-tollgate-policy": "bench-peer"},
	"request_headers_to_remove": ["authorization"],
} if allow

result := {
	"allowed": false,
	"http_status": 401,
	"headers": {"www-authenticate": "Bearer", "content-type": "application/json"},
	"body": json.marshal({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": -32001, "message": "missing or invalid bearer token"}}),
} if not authenticated

# Denied by policy: a JSON-RPC error the MCP client shows as the error of that call.
result := {
	"allowed": false,
	"http_status": 200,
	"headers": {"content-type": "application/json"},
	"body": json.marshal({"jsonrpc": "2.0", "id": rpc_id, "error": {
		"code": -32003,
		"message": concat("; ", denials),
		"data": {"reasons": denials},
	}}),
} if {
	authenticated
	not allow
}
