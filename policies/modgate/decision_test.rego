package modgate_test

import data.modgate

# --- fixtures shared by every *_test.rego in this package --------------------
#
# Tests use their own policy data (not policies/modgate/config/data.json,
# which compliance edits); policy_data_test.rego checks the shipped file
# separately.

fixture_private := {
	"patterns": ["corp.example.com/*", "*.internal.example"],
	"groups": ["developers", "release"],
}

fixture_blacklist := [
	{
		"module": "example.com/insecure",
		"versions": ["v1.0.1"],
		"reason": "CVE-2024-1234: remote code execution",
		"ticket": "SEC-42",
	},
	{
		"module": "example.com/leaky",
		"introduced": "v1.2.0",
		"fixed": "v1.3.0",
		"reason": "CVE-2024-5678: credentials leak",
		"ticket": "SEC-57",
	},
	{"module": "example.com/old", "fixed": "v0.5.0", "reason": "unmaintained before v0.5.0", "ticket": "SEC-60"},
	{"module": "example.com/regressed", "introduced": "v2.1.0", "reason": "licence changed in v2.1.0", "ticket": "SEC-61"},
	{"module": "example.com/legacy", "introduced": "v2.0.0", "fixed": "v2.5.0", "reason": "CVE-2024-9999: overflow"},
	{"module": "example.com/exact-incompatible", "versions": ["v3.1.0+incompatible"], "reason": "backdoor", "ticket": "SEC-63"},
	{"module": "example.com/abandoned", "reason": "typosquat of example.com/abandon", "ticket": "SEC-64"},
]

fixture_kinds := ["info", "zip", "latest"]

# The whole of data.modgate.config for the tests (it replaces the shipped one).
fixture_config := {
	"revision": "test.1",
	"private": fixture_private,
	"blacklist": fixture_blacklist,
	"blacklist_kinds": fixture_kinds,
}

# decide evaluates the decision for an input against the fixture data.
decide(request_input) := result if {
	result := modgate.decision with input as request_input
		with data.modgate.config as fixture_config
}

developer := {"authenticated": true, "subject": "alice", "groups": ["developers"], "method": "token", "details": {"token_id": "3f9a1c0e5b7d2468"}}

anonymous := {"authenticated": false, "subject": null, "groups": [], "method": "anonymous", "details": {}}

# module_input is a well-formed request for a module kind.
module_input(kind, module, version) := {
	"shape": 1,
	"request": {
		"id": "test-request",
		"kind": kind,
		"module": module,
		"version": version,
		"version_is_query": false,
		"resolved": false,
		"major": null,
		"sumdb": null,
	},
	"identity": developer,
	"client": {"address": "127.0.0.1"},
	"time": {"rfc3339": "2026-11-25T19:00:00Z", "unix_ns": 1795633200000000000},
}

# sumdb_input is a well-formed checksum database request.
sumdb_input(sumdb_kind, module, version) := object.union(
	module_input("sumdb", module, version),
	{"request": {"sumdb": {"database": "sum.example.org", "kind": sumdb_kind}}},
)

with_request(request_input, fields) := object.union(request_input, {"request": fields})

with_identity(request_input, fields) := object.union(request_input, {"identity": fields})

# The messages of a decision's reasons, in order (reasons are objects, decision
# contract v2).
messages(result) := [reason.message | some reason in result.reasons]

# --- the decision document ---------------------------------------------------

test_allowed_public_module if {
	decide(module_input("zip", "example.com/fine", "v1.2.3")) == {
		"allow": true,
		"reasons": [],
		"route": "public",
		"revision": "test.1",
		"obligations": {"log_only": false, "cache_ttl_s": 60},
	}
}

test_upper_case_path_elements_after_the_host_are_fine if {
	decide(module_input("info", "github.com/Foo/Bar", "v1.0.0")).allow
}

test_decision_has_all_keys_when_allowed if {
	object.keys(decide(module_input("mod", "example.com/fine", "v1.0.0"))) == {"allow", "reasons", "route", "revision", "obligations"}
}

test_decision_has_all_keys_for_a_string_input if {
	result := decide("not an object")
	object.keys(result) == {"allow", "reasons", "route", "revision", "obligations"}
	result.allow == false
	messages(result) == ["malformed policy input: the input must be a JSON object"]
}

test_decision_has_all_keys_for_an_empty_object if {
	result := decide({})
	object.keys(result) == {"allow", "reasons", "route", "revision", "obligations"}
	result.allow == false
	count(messages(result)) > 0
}

test_decision_defined_without_any_input if {
	result := modgate.decision
	result.allow == false
	result.route == "public"
	count(messages(result)) > 0
}

test_unauthenticated_denied if {
	result := decide(with_identity(module_input("zip", "example.com/fine", "v1.2.3"), anonymous))
	result.allow == false
	messages(result) == ["authentication required: send a token (Authorization: Bearer, or as the .netrc password)"]
}

test_authenticated_but_anonymous_method_denied if {
	result := decide(with_identity(module_input("zip", "example.com/fine", "v1.2.3"), {"method": "anonymous"}))
	result.allow == false
	startswith(messages(result)[0], "authentication required")
}

test_sumdb_tile_unauthenticated_denied if {
	result := decide(with_identity(sumdb_input("tile", null, null), anonymous))
	result.allow == false
	startswith(messages(result)[0], "authentication required")
}

test_revision_from_data if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.revision as "2030-01-01.7"
	result.revision == "2030-01-01.7"
}

test_revision_from_the_bundle_manifest_before_the_data if {
	manifest := {"revision": "sha256:abc", "roots": ["modgate"]}
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.revision as "2030-01-01.7"
		with data.system.bundles as {"modgate": {"manifest": manifest}}
	result.revision == "sha256:abc"
}

test_revision_of_another_bundle_is_not_the_policy_revision if {
	manifest := {"revision": "other.1", "roots": ["authz"]}
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.revision as "2030-01-01.7"
		with data.system.bundles as {"authz": {"manifest": manifest}}
	result.revision == "2030-01-01.7"
}

test_revision_unknown_when_not_a_string if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.revision as 7
	result.revision == "unknown"
}

test_revision_unknown_when_empty if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.revision as ""
	result.revision == "unknown"
}

test_reasons_are_single_lines if {
	identity := object.union(developer, {"groups": ["qa\nblocked by policy: all good, go ahead"]})
	result := decide(with_identity(module_input("zip", "corp.example.com/secret", "v1.0.0"), identity))
	result.allow == false
	every reason in messages(result) {
		not contains(reason, "\n")
	}
	contains(messages(result)[0], "[qa blocked by policy")
}

test_malformed_input_reported_before_authentication if {
	bad := with_identity(module_input("zip", "example.com/fine", 5), anonymous)
	result := decide(bad)
	result.allow == false
	every reason in messages(result) {
		startswith(reason, "malformed policy input: ")
	}
}

test_malformed_data_denies_with_reason if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.private as {"pattern": ["corp.example.com/*"], "groups": ["developers"]}
	result.allow == false
	startswith(messages(result)[0], "malformed policy data: private must have exactly the keys")
}

# A verified client certificate (method "mtls") is an authenticated identity like a token,
# and its groups (the certificate's OUs) open private paths the same way.
test_client_certificate_identity_reaches_private_paths if {
	builder := {"authenticated": true, "subject": "spiffe://corp.example/ci/builder", "groups": ["developers"], "method": "mtls"}
	result := decide(with_identity(module_input("zip", "corp.example.com/lib", "v1.0.0"), builder))
	result.allow == true
	result.route == "private"
}

# --- decision contract v2: reason objects and obligations ----------------------

valid_code(code) if regex.match(`^[a-z][a-z0-9_]{0,63}$`, code)

test_every_reason_is_an_object_with_a_code if {
	every result in [decide("x"), decide({}), decide(module_input("zip", "example.com/insecure", "v1.0.1"))] {
		every reason in result.reasons {
			object.keys(reason) == {"code", "message", "rule"}
			valid_code(reason.code)
			startswith(reason.rule, "modgate.")
		}
	}
}

test_codes_of_each_denial if {
	decide("x").reasons[0].code == "input_malformed"
	decide(module_input("zip", "example.com/insecure", "v1.0.1")).reasons[0].code == "blacklisted"
	decide(with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"authenticated": false})).reasons[0].code == "authentication_required"
}

test_malformed_data_code if {
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.2.3")
		with data.modgate.config.private as {"pattern": ["corp.example.com/*"], "groups": ["developers"]}
	result.allow == false
	every reason in result.reasons {
		reason.code == "data_malformed"
	}
}

test_cache_ttl_defaults_to_60 if {
	decide(module_input("zip", "example.com/fine", "v1.0.0")).obligations == {"log_only": false, "cache_ttl_s": 60}
}
