# The policy run on the inputs the gateway really sends: tests/golden/policy_input.json
# holds the exact text modgate's PolicyInput makes (tests/unit/policy/test_input.py checks
# that byte for byte), loaded here as data.policy_input:
#
#   opa test policies tests/golden      (make policy-test, modgate policy test)
package modgate_golden_test

import data.modgate
import data.modgate_test
import data.policy_input as golden

test_every_golden_input_is_well_formed if {
	count(golden) == 7
	every request_input in golden {
		modgate.input_valid with input as request_input
		count(modgate_test.errors(request_input)) == 0
	}
}

# The Rego tests' own inputs (decision_test.rego) have the shape the gateway sends.
test_the_test_fixtures_have_the_golden_shape if {
	fixture := modgate_test.module_input("zip", "example.com/fine", "v1.0.0")
	object.keys(fixture) == object.keys(golden.module_zip_token)
	object.keys(fixture.request) == object.keys(golden.module_zip_token.request)
	object.keys(fixture.identity) == object.keys(golden.module_zip_token.identity)
	sumdb := modgate_test.sumdb_input("lookup", "example.com/fine", "v1.0.0")
	object.keys(sumdb.request.sumdb) == object.keys(golden.sumdb_lookup.request.sumdb)
}

test_golden_zip_of_a_blacklisted_version_is_denied if {
	modgate_test.decide(golden.module_zip_token) == {
		"allow": false,
		"reasons": [{
			"code": "blacklisted",
			"message": "example.com/insecure@v1.0.1 is blacklisted: CVE-2024-1234: remote code execution (ticket SEC-42)",
			"rule": "modgate.blacklist_denials",
		}],
		"route": "public",
		"revision": "test.1",
		"obligations": {"log_only": false, "cache_ttl_s": 60},
	}
}

test_golden_anonymous_info_needs_authentication if {
	modgate_test.messages(modgate_test.decide(golden.anonymous_info)) == [modgate.authentication_reason]
}

test_golden_revision_query_is_resolved_before_the_blacklist_is_checked if {
	modgate_test.decide(golden.revision_query).allow
}

test_golden_resolved_query_is_checked_against_the_blacklist if {
	result := modgate_test.decide(golden.resolved_query)
	not result.allow
	modgate_test.messages(result) == ["example.com/insecure@v1.0.1 is blacklisted: CVE-2024-1234: remote code execution (ticket SEC-42)"]
}

test_golden_sumdb_lookup_of_a_private_module_is_denied if {
	result := modgate_test.decide(golden.sumdb_lookup)
	not result.allow
	result.route == "private"
	modgate_test.messages(result) == ["corp.example.com/secret is private: its checksum is never looked up in a public checksum database; add its path to GONOSUMDB"]
}

# The gateway's ask about an upstream's list hides the blacklisted version.
test_golden_list_hides_the_blacklisted_version if {
	found := modgate.hidden_versions with input as golden.list_hidden_ask
		with data.modgate.config as modgate_test.fixture_config
	found == ["v1.0.1"]
}
