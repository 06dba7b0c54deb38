package modgate_test

import data.modgate

# --- the shipped policies/data.json ------------------------------------------
# These tests read the real data file, so a broken edit fails `opa test`.

test_shipped_data_is_valid if {
	count(modgate.data_errors) == 0
	modgate.data_valid
}

test_shipped_data_loads_under_data_modgate if {
	is_string(data.modgate.revision)
	modgate.policy_revision == data.modgate.revision
	modgate.policy_revision != "unknown"
	count(modgate.private_patterns) > 0
	count(modgate.blacklist_entries) > 0
}

test_shipped_data_blocks_the_example_cve if {
	result := modgate.decision with input as module_input("zip", "example.com/insecure", "v1.0.1")
	result.allow == false
	contains(result.reasons[0], "is blacklisted")
	modgate.decision.allow with input as module_input("mod", "example.com/insecure", "v1.0.1")
}

test_shipped_data_routes_corp_private if {
	result := modgate.decision with input as module_input("zip", "corp.example.com/secret", "v1.0.0")
	result.route == "private"
	result.allow
}

# --- validation of edited data -----------------------------------------------

data_errors_with_private(private) := found if {
	found := modgate.data_errors with data.modgate.private as private
}

data_errors_with_blacklist(blacklist) := found if {
	found := modgate.data_errors with data.modgate.blacklist as blacklist
}

test_fixture_data_is_valid if {
	modgate.data_valid with data.modgate.private as fixture_private
		with data.modgate.blacklist as fixture_blacklist
		with data.modgate.blacklist_kinds as fixture_kinds
}

test_misspelled_private_key_rejected if {
	errors := data_errors_with_private({"pattern": ["corp.example.com/*"], "groups": ["developers"]})
	"malformed policy data: private must have exactly the keys groups, patterns (has: groups, pattern)" in errors
}

test_private_patterns_not_a_list_rejected if {
	count(data_errors_with_private({"patterns": "corp.example.com/*", "groups": ["developers"]})) > 0
}

test_private_groups_not_strings_rejected if {
	count(data_errors_with_private({"patterns": ["corp.example.com/*"], "groups": "developers"})) > 0
}

test_patterns_the_go_command_reads_differently_rejected if {
	every pattern in ["corp.example.com/**", "{corp,dev}.example.com", "corp.example.com/[^x]*", "corp.example.com,dev.example.com", "corp.example.com//x", "", "corp.example.com/[", 7] {
		count(data_errors_with_private({"patterns": [pattern], "groups": ["developers"]})) > 0
	}
}

test_goprivate_style_patterns_accepted if {
	every pattern in ["corp.example.com/*", "*.internal.example", "corp.example.com", "corp.example.com/team-[ab]/*", "corp.example.com/"] {
		count(data_errors_with_private({"patterns": [pattern], "groups": ["developers"]})) == 0
	}
}

test_bad_pattern_denies_every_request if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.0.0")
		with data.modgate.private as {"patterns": ["corp.example.com/**"], "groups": ["developers"]}
	result.allow == false
	startswith(result.reasons[0], "malformed policy data: private.patterns[0] \"corp.example.com/**\"")
}

test_blacklist_not_a_list_rejected if {
	"malformed policy data: blacklist must be a list of entries" in data_errors_with_blacklist({"module": "example.com/x"})
}

test_blacklist_entry_without_reason_rejected if {
	errors := data_errors_with_blacklist([{"module": "example.com/x", "versions": ["v1.0.0"], "ticket": "SEC-1"}])
	"malformed policy data: blacklist[0] (example.com/x): reason must be a non-empty string" in errors
}

test_blacklist_entry_with_misspelled_key_rejected if {
	errors := data_errors_with_blacklist([{"module": "example.com/x", "version": ["v1.0.0"], "reason": "r"}])
	"malformed policy data: blacklist[0] (example.com/x): unknown keys version (allowed: fixed, introduced, module, reason, ticket, versions)" in errors
}

test_blacklist_entry_with_versions_and_range_rejected if {
	errors := data_errors_with_blacklist([{"module": "example.com/x", "versions": ["v1.0.0"], "fixed": "v1.1.0", "reason": "r"}])
	"malformed policy data: blacklist[0] (example.com/x): use either versions or introduced/fixed, not both" in errors
}

test_blacklist_entry_with_non_canonical_version_rejected if {
	count(data_errors_with_blacklist([{"module": "example.com/x", "versions": ["1.0.0"], "reason": "r"}])) > 0
	count(data_errors_with_blacklist([{"module": "example.com/x", "versions": [], "reason": "r"}])) > 0
	count(data_errors_with_blacklist([{"module": "example.com/x", "introduced": "v1.0", "reason": "r"}])) > 0
	count(data_errors_with_blacklist([{"module": "example.com/x", "fixed": "latest", "reason": "r"}])) > 0
}

test_blacklist_entry_with_empty_range_rejected if {
	errors := data_errors_with_blacklist([{"module": "example.com/x", "introduced": "v1.3.0", "fixed": "v1.3.0", "reason": "r"}])
	"malformed policy data: blacklist[0] (example.com/x): introduced must be lower than fixed" in errors
}

test_blacklist_entry_without_module_rejected if {
	errors := data_errors_with_blacklist([{"versions": ["v1.0.0"], "reason": "r"}])
	"malformed policy data: blacklist[0]: module must be a module path such as example.com/mod" in errors
}

test_blacklist_kinds_with_sumdb_rejected if {
	errors := modgate.data_errors with data.modgate.blacklist_kinds as ["zip", "sumdb"]
	"malformed policy data: blacklist_kinds must be a list drawn from info, latest, mod, zip" in errors
}

test_blacklist_kinds_may_be_empty if {
	modgate.data_valid with data.modgate.blacklist_kinds as []
}

test_private_not_an_object_rejected if {
	"malformed policy data: private must be an object with keys patterns and groups" in data_errors_with_private(["corp.example.com/*"])
}

test_blacklist_entry_not_an_object_rejected if {
	"malformed policy data: blacklist[0]: must be an object" in data_errors_with_blacklist(["example.com/x@v1.0.0"])
}

test_blacklist_entry_with_numeric_ticket_rejected if {
	errors := data_errors_with_blacklist([{"module": "example.com/x", "versions": ["v1.0.0"], "reason": "r", "ticket": 42}])
	"malformed policy data: blacklist[0] (example.com/x): ticket must be a string" in errors
}
