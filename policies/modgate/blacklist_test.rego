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
	messages(result) == ["example.com/insecure@v1.0.1 is blacklisted: CVE-2024-1234: remote code execution (ticket SEC-42)"]
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

test_module_match_is_whole_path if {
	allowed(module_input("zip", "example.com/insecure/v2", "v1.0.1"))
	allowed(module_input("zip", "example.com/insecurex", "v1.0.1"))
	allowed(module_input("zip", "example.com/insecur", "v1.0.1"))
	allowed(module_input("zip", "example.com/insecure.v1", "v1.0.1"))
	allowed(module_input("zip", "example.com", "v1.0.1"))
}

# --- case aliases ------------------------------------------------------------
#
# A code host such as GitHub serves one repository under every spelling of
# its path, so github.com/Sirupsen/logrus IS github.com/sirupsen/logrus.

test_case_alias_of_a_blacklisted_module_denied if {
	every module in ["example.com/Insecure", "example.com/INSECURE", "example.com/insEcure"] {
		result := decide(module_input("zip", module, "v1.0.1"))
		result.allow == false
		messages(result) == [sprintf("%s@v1.0.1 is blacklisted: CVE-2024-1234: remote code execution (ticket SEC-42)", [module])]
	}
}

test_case_alias_of_a_blacklisted_range_denied if {
	denied(module_input("zip", "example.com/Leaky", "v1.2.7"))
	allowed(module_input("zip", "example.com/Leaky", "v1.3.0"))
}

logrus_blacklist(module) := [{"module": module, "versions": ["v1.0.0"], "reason": "renamed", "ticket": "SEC-80"}]

decide_with_blacklist(request_input, blacklist) := result if {
	result := modgate.decision with input as request_input
		with data.modgate.config as object.union(fixture_config, {"blacklist": blacklist})
}

test_entry_in_lower_case_stops_every_spelling if {
	blacklist := logrus_blacklist("github.com/sirupsen/logrus")
	every module in ["github.com/sirupsen/logrus", "github.com/Sirupsen/logrus", "github.com/SIRUPSEN/Logrus"] {
		decide_with_blacklist(module_input("zip", module, "v1.0.0"), blacklist).allow == false
	}
	decide_with_blacklist(module_input("zip", "github.com/Sirupsen/logrus", "v1.0.1"), blacklist).allow
}

test_entry_in_mixed_case_stops_every_spelling if {
	blacklist := logrus_blacklist("github.com/Sirupsen/logrus")
	every module in ["github.com/sirupsen/logrus", "github.com/Sirupsen/logrus", "github.com/sirupsen/Logrus"] {
		decide_with_blacklist(module_input("zip", module, "v1.0.0"), blacklist).allow == false
	}
}

test_requested_blacklist_entries_found_for_every_spelling if {
	every pair in [
		["github.com/Sirupsen/logrus", "github.com/sirupsen/logrus"],
		["github.com/sirupsen/logrus", "github.com/Sirupsen/logrus"],
	] {
		found := modgate.requested_blacklist_entries with input as module_input("zip", pair[1], "v1.0.0")
			with data.modgate.config.blacklist as logrus_blacklist(pair[0])
		found == logrus_blacklist(pair[0])
	}
}

# The opt-out: an entry with "case_sensitive": true applies to its own
# spelling only (for a host that really tells the spellings apart).
test_case_sensitive_entry_applies_to_its_spelling_only if {
	blacklist := [object.union(logrus_blacklist("github.com/Sirupsen/logrus")[0], {"case_sensitive": true})]
	decide_with_blacklist(module_input("zip", "github.com/Sirupsen/logrus", "v1.0.0"), blacklist).allow == false
	decide_with_blacklist(module_input("zip", "github.com/sirupsen/logrus", "v1.0.0"), blacklist).allow
	decide_with_blacklist(module_input("info", "github.com/SIRUPSEN/logrus", "v1.0.0"), blacklist).allow
}

test_case_sensitive_false_is_the_default if {
	blacklist := [object.union(logrus_blacklist("github.com/Sirupsen/logrus")[0], {"case_sensitive": false})]
	decide_with_blacklist(module_input("zip", "github.com/sirupsen/logrus", "v1.0.0"), blacklist).allow == false
}

# A case_sensitive that is not a boolean might have meant either, so the
# entry denies every request for every spelling of its module.
test_malformed_case_sensitive_denies_every_spelling if {
	every flag in ["true", 1, null, "false"] {
		blacklist := [object.union(logrus_blacklist("github.com/Sirupsen/logrus")[0], {"case_sensitive": flag})]
		every module in ["github.com/Sirupsen/logrus", "github.com/sirupsen/logrus"] {
			result := decide_with_blacklist(module_input("zip", module, "v1.0.1"), blacklist)
			result.allow == false
			messages(result) == ["malformed policy data: blacklist[0] (github.com/Sirupsen/logrus): case_sensitive must be true or false"]
		}
		decide_with_blacklist(module_input("zip", "example.com/fine", "v1.0.0"), blacklist).allow
	}
}

# Look-alikes that are other paths, not other spellings, stay allowed.
test_lookalike_of_a_case_alias_allowed if {
	blacklist := logrus_blacklist("github.com/sirupsen/logrus")
	every module in ["github.com/sirupsen/logrus/v2", "github.com/sirupsen-logrus", "github.com/sirupsen/logrusx", "github.com/sirupsen"] {
		decide_with_blacklist(module_input("zip", module, "v1.0.0"), blacklist).allow
	}
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
	messages(result) == ["example.com/leaky@v1.2.4-0.20240101000000-abcdefabcdef is blacklisted: CVE-2024-5678: credentials leak (ticket SEC-57)"]
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
	messages(result) == ["example.com/legacy@v2.1.0+incompatible is blacklisted: CVE-2024-9999: overflow"]
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
	count(messages(result)) == 2
}

# --- how requested_blacklist_entries finds entries -----------------------------
#
# The module paths are searched as one folded text, one path per line; these
# cases pin down that a match maps back to the right entries.

entry_for(module, ticket) := {"module": module, "versions": ["v1.0.0"], "reason": "r", "ticket": ticket}

found_for(module, blacklist) := found if {
	found := modgate.requested_blacklist_entries with input as module_input("zip", module, "v1.0.0")
		with data.modgate.config.blacklist as blacklist
}

test_adjacent_entries_for_one_module_are_all_found if {
	blacklist := [entry_for("example.com/a", "1"), entry_for("example.com/A", "2"), entry_for("example.com/a", "3"), entry_for("example.com/b", "4")]
	found_for("example.com/a", blacklist) == [blacklist[0], blacklist[1], blacklist[2]]
}

test_first_and_last_entries_are_found if {
	blacklist := [entry_for("example.com/first", "1"), entry_for("example.com/mid", "2"), entry_for("example.com/last", "3")]
	found_for("example.com/first", blacklist) == [blacklist[0]]
	found_for("example.com/last", blacklist) == [blacklist[2]]
	found_for("example.com/only", [entry_for("example.com/only", "1")]) == [entry_for("example.com/only", "1")]
}

# A path found inside another line (prefix, suffix, one element of it) is no
# match: each line is a whole module path.
test_parts_of_other_paths_are_not_found if {
	blacklist := [entry_for("xexample.com/a", "1"), entry_for("example.com/a/v2", "2"), entry_for("example.com/a.b", "3")]
	found_for("example.com/a", blacklist) == []
	found_for("example.com", blacklist) == []
	found_for("a/v2", blacklist) == []
}

# Offsets count characters, not bytes, on both sides.
test_non_ascii_entries_before_a_match_keep_the_index if {
	blacklist := [entry_for("example.com/ünïcode", "1"), entry_for("example.com/ß", "2"), entry_for("example.com/x", "3")]
	found_for("example.com/x", blacklist) == [blacklist[2]]
}

test_no_entries_is_valid_and_finds_nothing if {
	found_for("example.com/x", []) == []
	modgate.data_valid with input as module_input("zip", "example.com/x", "v1.0.0")
		with data.modgate.config as object.union(fixture_config, {"blacklist": []})
	modgate.config_ok with data.modgate.config as object.union(fixture_config, {"blacklist": []})
}

# A module holding a line break would shift the lines: a request that matches
# a line denies, and config_ok is false. data_errors names the entry.
test_module_with_a_line_break_denies_what_it_could_shift if {
	blacklist := array.concat([{"module": "example.com/y\nexample.com/x", "versions": ["v1.0.0"], "reason": "r"}], fixture_blacklist)
	config := object.union(fixture_config, {"blacklist": blacklist})
	denied_with := modgate.decision with input as module_input("zip", "example.com/insecure", "v1.0.0") with data.modgate.config as config
	denied_with.allow == false
	startswith(messages(denied_with)[0], "malformed policy data: blacklist[0]")
	not modgate.config_ok with data.modgate.config as config
	modgate.decision.allow with input as module_input("zip", "example.com/fine", "v1.0.0") with data.modgate.config as config
}
