package modgate_test

import data.modgate

denied(request_input) if {
	result := decide(request_input)
	result.allow == false
}

allowed(request_input) if decide(request_input).allow

# --- exact versions ----------------------------------------------------------

test_blacklisted_version_denied_on_zip if {
	result := decide(module_input("zip", "example.com/insecure", "v1.0.1"))
	result.allow == false
	result.reasons == ["example.com/insecure@v1.0.1 is blacklisted: CVE-2024-1234: remote code execution (ticket SEC-42)"]
}

test_blacklisted_version_denied_on_info if {
	denied(module_input("info", "example.com/insecure", "v1.0.1"))
}

test_blacklisted_version_allowed_on_mod if {
	# .mod stays fetchable so module graphs that merely mention it resolve.
	allowed(module_input("mod", "example.com/insecure", "v1.0.1"))
}

test_other_versions_of_a_blacklisted_module_allowed if {
	allowed(module_input("zip", "example.com/insecure", "v1.0.0"))
	allowed(module_input("zip", "example.com/insecure", "v1.0.2"))
	allowed(module_input("zip", "example.com/insecure", "v1.0.1-rc.1"))
}

test_list_of_a_blacklisted_module_allowed if {
	allowed(module_input("list", "example.com/insecure", null))
}

test_latest_first_request_allowed if {
	allowed(module_input("latest", "example.com/insecure", null))
}

test_latest_resolved_to_blacklisted_version_denied if {
	denied(with_request(module_input("latest", "example.com/insecure", "v1.0.1"), {"resolved": true}))
}

test_revision_query_not_blacklisted if {
	allowed(with_request(module_input("info", "example.com/insecure", "master"), {"version_is_query": true}))
}

test_resolved_revision_query_blacklisted if {
	denied(with_request(module_input("info", "example.com/insecure", "v1.0.1"), {"resolved": true}))
}

test_canonical_version_flagged_as_query_still_blacklisted if {
	denied(with_request(module_input("info", "example.com/insecure", "v1.0.1"), {"version_is_query": true}))
}

test_module_match_is_exact if {
	allowed(module_input("zip", "example.com/insecure/v2", "v1.0.1"))
	allowed(module_input("zip", "example.com/insecurex", "v1.0.1"))
	allowed(module_input("zip", "example.com/Insecure", "v1.0.1"))
	allowed(module_input("zip", "example.com", "v1.0.1"))
}

test_sumdb_lookup_of_blacklisted_version_allowed if {
	allowed(sumdb_input("lookup", "example.com/insecure", "v1.0.1"))
}

test_exact_incompatible_version if {
	denied(module_input("zip", "example.com/exact-incompatible", "v3.1.0+incompatible"))
	allowed(module_input("zip", "example.com/exact-incompatible", "v3.1.1+incompatible"))
}

# --- ranges: introduced <= version < fixed -----------------------------------

test_range_introduced_is_inclusive if {
	denied(module_input("zip", "example.com/leaky", "v1.2.0"))
}

test_range_below_introduced_allowed if {
	allowed(module_input("zip", "example.com/leaky", "v1.1.9"))
	allowed(module_input("zip", "example.com/leaky", "v1.2.0-rc.1"))
}

test_range_inside if {
	denied(module_input("zip", "example.com/leaky", "v1.2.7"))
}

test_range_fixed_is_exclusive if {
	allowed(module_input("zip", "example.com/leaky", "v1.3.0"))
	allowed(module_input("zip", "example.com/leaky", "v1.3.1"))
}

test_range_prerelease_of_fixed_is_inside if {
	denied(module_input("zip", "example.com/leaky", "v1.3.0-rc.1"))
}

test_range_pseudo_version_inside if {
	# A pseudo-version is a pre-release of the version after its base.
	result := decide(module_input("zip", "example.com/leaky", "v1.2.4-0.20240101000000-abcdefabcdef"))
	result.allow == false
	result.reasons == ["example.com/leaky@v1.2.4-0.20240101000000-abcdefabcdef is blacklisted: CVE-2024-5678: credentials leak (ticket SEC-57)"]
}

test_range_pseudo_version_before_introduced_allowed if {
	allowed(module_input("zip", "example.com/leaky", "v1.2.0-0.20230101000000-abcdefabcdef"))
}

test_range_pseudo_version_of_fixed_is_inside if {
	denied(module_input("zip", "example.com/leaky", "v1.3.0-0.20240101000000-abcdefabcdef"))
}

test_range_with_only_fixed if {
	denied(module_input("zip", "example.com/old", "v0.0.0-20200101000000-abcdefabcdef"))
	denied(module_input("zip", "example.com/old", "v0.4.9"))
	allowed(module_input("zip", "example.com/old", "v0.5.0"))
}

test_range_with_only_introduced if {
	allowed(module_input("zip", "example.com/regressed", "v2.0.9"))
	denied(module_input("zip", "example.com/regressed", "v2.1.0"))
	denied(module_input("zip", "example.com/regressed", "v9.0.0"))
}

test_range_with_incompatible_versions if {
	denied(module_input("zip", "example.com/legacy", "v2.0.0+incompatible"))
	denied(module_input("zip", "example.com/legacy", "v2.4.9+incompatible"))
	allowed(module_input("zip", "example.com/legacy", "v2.5.0+incompatible"))
	allowed(module_input("zip", "example.com/legacy", "v1.9.0"))
}

test_entry_without_ticket_has_no_ticket_text if {
	result := decide(module_input("zip", "example.com/legacy", "v2.1.0+incompatible"))
	result.reasons == ["example.com/legacy@v2.1.0+incompatible is blacklisted: CVE-2024-9999: overflow"]
}

test_entry_without_versions_or_bounds_blocks_every_version if {
	denied(module_input("zip", "example.com/abandoned", "v0.0.0-20200101000000-abcdefabcdef"))
	denied(module_input("zip", "example.com/abandoned", "v1.0.0"))
	allowed(module_input("mod", "example.com/abandoned", "v1.0.0"))
}

# --- which kinds -------------------------------------------------------------

test_blacklist_kinds_come_from_data if {
	result := modgate.decision with input as module_input("mod", "example.com/insecure", "v1.0.1")
		with data.modgate.config.blacklist as fixture_blacklist
		with data.modgate.config.blacklist_kinds as ["mod"]
	result.allow == false
	zip_result := modgate.decision with input as module_input("zip", "example.com/insecure", "v1.0.1")
		with data.modgate.config.blacklist as fixture_blacklist
		with data.modgate.config.blacklist_kinds as ["mod"]
	zip_result.allow
}

test_blacklist_kinds_default_without_data if {
	modgate.blacklist_applied_kinds == {"info", "zip", "latest"}
}

test_several_matching_entries_give_several_reasons if {
	blacklist := array.concat(fixture_blacklist, [{"module": "example.com/insecure", "fixed": "v2.0.0", "reason": "old API", "ticket": "SEC-70"}])
	result := modgate.decision with input as module_input("zip", "example.com/insecure", "v1.0.1")
		with data.modgate.config.blacklist as blacklist
	count(result.reasons) == 2
}
