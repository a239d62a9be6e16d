# METADATA
# title: Secret and personal-data detectors
# description: |
#   Finds argument fields that hold credentials (by name or by the shape of the value) or
#   personal data, as JSON pointers under /input/mcp/arguments, for a decision's mask and for
#   data.system.log.mask rules.
package tollgate.lib.secrets

# Field names that hold credentials, whatever their value looks like. Names are split into words
# (on _ - . and case is ignored), so db_password, apiKey, x-api-key and client_secret all match
# while tokens_used does not. Plain string operations: regular expressions cost a compilation per
# evaluation in WebAssembly, and this runs on every argument of every call.
secret_words := {
	"password", "passwd", "passphrase", "pwd", "secret", "apikey", "token", "auth", "authorization",
	"credential", "credentials", "cookie", "privatekey", "clientsecret", "accesskey", "secretkey",
	"sessionid", "bearer",
}

key_words(k) := [w |
	some w in split(replace(replace(lower(k), "-", "_"), ".", "_"), "_")
	w != ""
]

secret_key(k) if {
	is_string(k)
	some w in key_words(k)
	w in secret_words
}

secret_key(k) if {
	is_string(k)
	words := key_words(k)
	some i, w in words
	concat("", [w, words[i + 1]]) in secret_words
}

# Well-known credential formats. A pattern's regular expression only runs on strings that contain
# one of its markers and are long enough, which keeps ordinary arguments cheap to check.
value_patterns := {
	"an AWS access key id": {"markers": ["AKIA", "ASIA"], "min_length": 20, "re": `\b(AKIA|ASIA)[0-9A-Z]{16}\b`},
	"a GitHub token": {"markers": ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], "min_length": 40, "re": `\bgh[pousr]_[A-Za-z0-9]{36,}\b`},
	"a Slack token": {"markers": ["xox"], "min_length": 15, "re": `\bxox[abposr]-[A-Za-z0-9-]{10,}`},
	"a Stripe secret key": {"markers": ["k_live_", "k_test_"], "min_length": 24, "re": `\b[rs]k_(live|test)_[A-Za-z0-9]{16,}\b`},
	"an API key (sk-...)": {"markers": ["sk-"], "min_length": 23, "re": `\bsk-[A-Za-z0-9_-]{20,}`},
	"a private key": {"markers": ["PRIVATE KEY-----"], "min_length": 30, "re": `-----BEGIN [A-Z ]*PRIVATE KEY-----`},
	"a JSON Web Token": {"markers": ["eyJ"], "min_length": 30, "re": `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`},
}

pii_patterns := {
	"an email address": {"markers": ["@"], "min_length": 6, "re": `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`},
	"a US social security number": {"markers": ["-"], "min_length": 11, "re": `\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b`},
	"a payment card number": {"markers": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "min_length": 13, "re": `\b[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{1,7}\b`},
}

# Names of the patterns that match a string.
kinds(patterns, s) := {kind |
	is_string(s)
	some kind, p in patterns
	count(s) >= p.min_length
	some m in p.markers
	contains(s, m)
	regex.match(p.re, s)
}

# Names of the credential formats found in a string.
secret_kinds(s) := kinds(value_patterns, s)

pii_kinds(s) := kinds(pii_patterns, s)

# Every [path, value] below args (objects and arrays), path as a list of keys and indexes.
leaves(args) := {[path, value] |
	is_object(args)
	walk(args, [path, value])
	count(path) > 0
}

# JSON pointers to argument fields named like credentials.
secret_key_paths(args) := {pointer(path) |
	some [path, _] in leaves(args)
	secret_key(path[count(path) - 1])
}

# JSON pointers to string arguments whose value looks like a credential, with what it looks like.
secret_value_findings(args) := {[pointer(path), kind] |
	some [path, value] in leaves(args)
	some kind in secret_kinds(value)
}

pii_paths(args) := {pointer(path) |
	some [path, value] in leaves(args)
	count(pii_kinds(value)) > 0
}

# A path below input.mcp.arguments as an RFC 6901 pointer rooted at the decision-log event.
pointer(path) := concat("", ["/input/mcp/arguments/", concat("/", [escape(p) | some p in path])])

escape(p) := replace(replace(p, "~", "~0"), "/", "~1") if is_string(p)

escape(p) := format_int(p, 10) if is_number(p)
