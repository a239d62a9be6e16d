package tollgate.lib.secrets_test

import data.tollgate.lib.secrets

test_secret_key_names if {
	every k in ["password", "api_key", "apiKey", "client_secret", "db_password", "token", "access-key", "Authorization"] {
		secrets.secret_key(k)
	}
	every k in ["query", "title", "tokens_used", "customer_id", "passage"] {
		not secrets.secret_key(k)
	}
}

test_secret_values if {
	secrets.secret_kinds("key AKIAABCDEFGHIJKLMNOP here") == {"an AWS access key id"}
	secrets.secret_kinds("ghp_abcdefghijklmnopqrstuvwxyz0123456789") == {"a GitHub token"}
	secrets.secret_kinds("-----BEGIN RSA PRIVATE KEY-----\nMIIE") == {"a private key"}
	secrets.secret_kinds("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz") == {"a JSON Web Token"}
	secrets.secret_kinds("nothing to see") == set()
	secrets.secret_kinds(42) == set()
}

test_pii if {
	secrets.pii_kinds("mail ada@example.com") == {"an email address"}
	secrets.pii_kinds("ssn 123-45-6789") == {"a US social security number"}
	secrets.pii_kinds("card 4111 1111 1111 1111") == {"a payment card number"}
	secrets.pii_kinds("order 12") == set()
}

test_paths_are_json_pointers if {
	a := {"password": "x", "nested": {"api_key": "y", "list": [{"token": "z"}]}, "a/b~c": {"secret": 1}}
	secrets.secret_key_paths(a) == {
		"/input/mcp/arguments/password",
		"/input/mcp/arguments/nested/api_key",
		"/input/mcp/arguments/nested/list/0/token",
		"/input/mcp/arguments/a~1b~0c/secret",
	}
	secrets.secret_key_paths(null) == set()
}

test_value_findings_and_pii_paths if {
	a := {"body": "AKIAABCDEFGHIJKLMNOP", "notes": ["write to ada@example.com"]}
	secrets.secret_value_findings(a) == {["/input/mcp/arguments/body", "an AWS access key id"]}
	secrets.pii_paths(a) == {"/input/mcp/arguments/notes/0"}
}
