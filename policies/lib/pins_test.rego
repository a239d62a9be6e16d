package tollgate.lib.pins_test

import data.tollgate.lib.pins

pin(status, findings) := {"status": status, "sha256": "aaaaaaaaaaaaaaaa", "approved_sha256": "bbbbbbbbbbbbbbbb", "findings": findings, "accepted_findings": false}

test_approved_clean_tool_has_no_problems if {
	pins.problems(pin("approved", []), "t", "s", {}) == set()
}

test_new_and_changed_await_review if {
	some m in pins.problems(pin("new", []), "t", "s", {})
	contains(m, "Tool t of server s awaits review")
	some c in pins.problems(pin("changed", []), "t", "s", {})
	contains(c, "changed since it was approved and awaits review")
	contains(c, "aaaaaaaaaaaa")
}

test_unverified_asks_to_list_first if {
	some m in pins.problems(pin("unverified", []), "t", "s", {})
	contains(m, "List the tools")
}

test_per_server_settings if {
	pins.problems(pin("new", []), "t", "s", {"new": "allow"}) == set()
	count(pins.problems(pin("changed", []), "t", "s", {"new": "allow"})) == 1
}

test_findings_block_unless_accepted if {
	f := [
		{"kind": "instruction", "severity": "block", "detail": "before answering", "offset": 3},
		{"kind": "secret_reference", "severity": "block", "detail": "id_rsa", "offset": 9},
		{"kind": "url", "severity": "note", "detail": "https://x", "offset": 20},
	]
	some m in pins.problems(pin("approved", f), "t", "s", {})
	contains(m, "possibly poisoned (instruction, secret_reference)")
	accepted := object.union(pin("approved", f), {"accepted_findings": true})
	pins.problems(accepted, "t", "s", {}) == set()
	pins.problems(pin("approved", f), "t", "s", {"findings": "allow"}) == set()
}

test_note_findings_do_not_block if {
	pins.problems(pin("approved", [{"kind": "url", "severity": "note", "detail": "https://x", "offset": 0}]), "t", "s", {}) == set()
}

test_poisoned_server_instructions_refuse_its_tools if {
	p := object.union(pin("approved", []), {"server_findings": [{"kind": "instruction", "severity": "block", "detail": "<important>", "offset": 0}]})
	some m in pins.problems(p, "t", "s", {})
	contains(m, "Server s sent instructions the scanner flags as possibly poisoned (instruction)")
	pins.problems(p, "t", "s", {"instructions": "allow"}) == set()
}

test_described_items if {
	f := [{"kind": "bidi_control", "severity": "block", "detail": "U+202E", "offset": 0}]
	pins.described_problems(f, "prompt", "p", "s", {}) == {"The prompt p of server s has a description the scanner flags as possibly poisoned (bidi_control), so it is hidden and refused."}
	pins.described_problems([], "prompt", "p", "s", {}) == set()
}
