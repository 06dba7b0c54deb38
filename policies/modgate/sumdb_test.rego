package modgate_test

import data.modgate

test_sumdb_lookup_of_private_module_denied_with_hint if {
	result := decide(sumdb_input("lookup", "corp.example.com/secret", "v1.0.0"))
	result.allow == false
	result.route == "private"
	messages(result) == ["corp.example.com/secret is private: its checksum is never looked up in a public checksum database; add its path to GONOSUMDB"]
}

test_sumdb_lookup_of_private_module_denied_even_for_allowed_group if {
	identity := object.union(developer, {"groups": ["developers", "release"]})
	result := decide(with_identity(sumdb_input("lookup", "svc.internal.example/lib", "v1.0.0"), identity))
	result.allow == false
}

# The lookup of a case alias of a private path would disclose it just the same.
test_sumdb_lookup_of_a_case_alias_of_a_private_path_denied if {
	result := modgate.decision with input as sumdb_input("lookup", "github.com/MyOrg/secret", "v1.0.0")
		with data.modgate.config as object.union(fixture_config, {"private": {"patterns": ["github.com/myorg/*"], "groups": ["developers"]}})
	result.allow == false
	result.route == "private"
	startswith(messages(result)[0], "github.com/MyOrg/secret is private: its checksum is never looked up")
}

test_sumdb_lookup_of_public_module_allowed if {
	result := decide(sumdb_input("lookup", "example.com/fine", "v1.0.0"))
	result.allow
	result.route == "public"
}

test_sumdb_lookup_of_lookalike_module_allowed if {
	decide(sumdb_input("lookup", "corp.example.com.evil.org/x", "v1.0.0")).allow
}

test_sumdb_tile_allowed if {
	decide(sumdb_input("tile", null, null)) == {"allow": true, "reasons": [], "route": "public", "revision": "test.1", "obligations": {"log_only": false, "cache_ttl_s": 60}}
}

test_sumdb_supported_allowed if {
	result := decide(sumdb_input("supported", null, null))
	result.allow
	result.route == "public"
}

test_sumdb_tile_needs_no_group if {
	decide(with_identity(sumdb_input("tile", null, null), {"groups": []})).allow
}
