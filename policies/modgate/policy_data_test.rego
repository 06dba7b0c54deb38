package modgate_test

import data.modgate

# --- the shipped policies/modgate/config/data.json -----------------------------
# These tests read the real data file, so a broken edit fails `opa test`.

test_shipped_data_is_valid if {
	count(modgate.data_errors) == 0
	modgate.data_valid
	modgate.config_ok
}

test_shipped_data_loads_under_data_modgate_config if {
	is_string(data.modgate.config.revision)
	modgate.policy_revision == data.modgate.config.revision
	modgate.policy_revision != "unknown"
	count(modgate.private_patterns) > 0
	count(modgate.blacklist_entries) > 0
}

test_nothing_is_left_at_the_old_place if {
	not modgate._data_at_old_place
	count(modgate._old_place_keys) == 0
}

test_shipped_data_blocks_the_example_cve if {
	result := modgate.decision with input as module_input("zip", "example.com/insecure", "v1.0.1")
	result.allow == false
	contains(messages(result)[0], "is blacklisted")
	modgate.decision.allow with input as module_input("mod", "example.com/insecure", "v1.0.1")
}

test_shipped_data_routes_corp_private if {
	result := modgate.decision with input as module_input("zip", "corp.example.com/secret", "v1.0.0")
	result.route == "private"
	result.allow
}

# --- the top level of data.modgate.config ---------------------------------------

every_kind_of_request := [
	module_input("zip", "example.com/fine", "v1.0.0"),
	module_input("list", "corp.example.com/secret", null),
	module_input("zip", "corp.example.com/secret", "v1.0.0"),
	module_input("zip", "example.com/insecure", "v1.0.1"),
	sumdb_input("tile", null, null),
	sumdb_input("lookup", "example.com/fine", "v1.0.0"),
]

# denies_everything_saying: every request is denied, routed public unless the
# data still says private, and the reasons hold the expected message.
denies_everything_saying(config, message) if {
	every request_input in every_kind_of_request {
		result := modgate.decision with input as request_input with data.modgate.config as config
		result.allow == false
		message in messages(result)
	}
	not config_ok_with(config)
}

test_misspelt_private_denies_every_request if {
	every misspelt in ["privat", "Private", "private ", "PRIVATE"] {
		config := renamed(fixture_config, "private", misspelt)
		denies_everything_saying(config, "malformed policy data: required key private is missing")
		denies_everything_saying(config, sprintf("malformed policy data: unknown key %q (allowed: blacklist, blacklist_kinds, ci, private, revision)", [misspelt]))
	}
}

test_misspelt_blacklist_denies_every_request if {
	config := renamed(fixture_config, "blacklist", "blacklists")
	denies_everything_saying(config, "malformed policy data: required key blacklist is missing")
	denies_everything_saying(config, "malformed policy data: unknown key \"blacklists\" (allowed: blacklist, blacklist_kinds, ci, private, revision)")
}

test_misspelt_optional_key_denies_every_request if {
	every pair in [["blacklist_kinds", "blacklist_kind"], ["revision", "revison"]] {
		config := renamed(fixture_config, pair[0], pair[1])
		denies_everything_saying(config, sprintf("malformed policy data: unknown key %q (allowed: blacklist, blacklist_kinds, ci, private, revision)", [pair[1]]))
	}
}

test_empty_data_denies_every_request if {
	denies_everything_saying({}, "malformed policy data: required key private is missing")
	denies_everything_saying({}, "malformed policy data: required key blacklist is missing")
}

# The old file format dropped into policies/modgate/config/: its wrapper is
# an unknown key, and nothing is private or blacklisted any more.
test_old_modgate_wrapper_in_the_config_directory_denies_every_request if {
	config := {"modgate": fixture_config}
	denies_everything_saying(config, "malformed policy data: unknown key \"modgate\" (allowed: blacklist, blacklist_kinds, ci, private, revision)")
	denies_everything_saying(config, "malformed policy data: the keys go at the top level of the data file, without a \"modgate\" wrapper")
}

# A second data file in policies/modgate/config/ merges into the same object,
# so its keys are checked like those of data.json.
test_second_data_file_with_an_unknown_key_denies_every_request if {
	config := object.union(fixture_config, {"blacklist_extra": [{"module": "example.com/fine", "reason": "r"}]})
	denies_everything_saying(config, "malformed policy data: unknown key \"blacklist_extra\" (allowed: blacklist, blacklist_kinds, ci, private, revision)")
}

test_revision_of_another_type_denies_every_request if {
	every revision in [7, null, ["2026-11-25.1"], {}] {
		config := object.union(fixture_config, {"revision": revision})
		every request_input in every_kind_of_request {
			result := modgate.decision with input as request_input with data.modgate.config as config
			result.allow == false
			startswith(messages(result)[0], "malformed policy data: revision must be a string (got ")
			result.revision == "unknown"
		}
	}
}

test_config_that_is_no_object_denies_every_request if {
	every config in [[fixture_config], "config", 7, null, true] {
		denies_everything_saying(config, sprintf("malformed policy data: data.modgate.config must be an object (got %s)", [type_name(config)]))
	}
}

test_optional_keys_may_be_left_out if {
	config := object.remove(fixture_config, {"revision", "blacklist_kinds"})
	result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.0.0") with data.modgate.config as config
	result.allow
	result.revision == "unknown"
	config_ok_with(config)
	count(data_errors_with(config)) == 0
}

test_unknown_keys_are_shown_quoted_and_sorted if {
	config := object.union(fixture_config, {"b\nx": 1, "a": 2})
	errors := data_errors_with(config)
	"malformed policy data: unknown key \"a\", \"b\\nx\" (allowed: blacklist, blacklist_kinds, ci, private, revision)" in errors
}

# Data at the old place (a policies/data.json with the "modgate" wrapper, or a
# data file in policies/modgate/) is read by no rule: whatever it meant to
# keep private or blacklisted would be served, so every request is denied.
test_data_at_the_old_place_denies_every_request if {
	every request_input in every_kind_of_request {
		result := modgate.decision with input as request_input
			with data.modgate.config as fixture_config
			with data.modgate.private as fixture_private
			with data.modgate.blacklist as fixture_blacklist
		result.allow == false
		messages(result) == ["malformed policy data: data.modgate.blacklist, data.modgate.private found at the old place, which no rule reads; move it into policies/modgate/config/data.json (data.modgate.config), keys at the top level"]
	}
	not modgate.config_ok with data.modgate.config as fixture_config with data.modgate.private as fixture_private
}

test_each_old_key_alone_denies if {
	request_input := module_input("zip", "example.com/fine", "v1.0.0")
	denied_old(request_input, "revision") with data.modgate.revision as "2026-01-01.1"
	denied_old(request_input, "blacklist_kinds") with data.modgate.blacklist_kinds as ["zip"]
	denied_old(request_input, "blacklist") with data.modgate.blacklist as []
	denied_old(request_input, "private") with data.modgate.private as false
}

denied_old(request_input, key) if {
	result := modgate.decision with input as request_input with data.modgate.config as fixture_config
	result.allow == false
	contains(messages(result)[0], sprintf("data.modgate.%s found at the old place", [key]))
}

test_config_ok_is_defined_without_input if {
	modgate.config_ok with data.modgate.config as fixture_config
	modgate.config_ok == false with data.modgate.config as {}
	modgate.config_ok == false with data.modgate.config as object.union(fixture_config, {"x": 1})
}

test_config_ok_ignores_problems_that_deny_nothing if {
	config := object.union(fixture_config, {"private": {"patterns": ["corp.example.com/**"], "groups": ["developers", 7]}})
	count(data_errors_with(config)) == 2
	config_ok_with(config)
}

test_config_ok_false_for_a_broken_entry_of_any_module if {
	config := object.union(fixture_config, {"blacklist": array.concat(fixture_blacklist, [{"module": "example.com/x", "versions": ["1.0"], "reason": "r"}])})
	not config_ok_with(config)
	modgate.decision.allow with input as module_input("zip", "example.com/fine", "v1.0.0") with data.modgate.config as config
}

# --- private patterns as objects -----------------------------------------------

test_pattern_objects_accepted if {
	every pattern in [{"pattern": "corp.example.com/*"}, {"pattern": "corp.example.com/*", "case_sensitive": true}, {"pattern": "corp.example.com/*", "case_sensitive": false}] {
		count(data_errors_with_private({"patterns": [pattern], "groups": ["developers"]})) == 0
	}
}

# A misspelt "pattern" would match nothing: every request is denied.
test_malformed_pattern_object_denies_every_request if {
	every pattern in [
		{"patern": "corp.example.com/*"},
		{"pattern": "corp.example.com/*", "case_sensitive": "true"},
		{"pattern": "corp.example.com/*", "case_sensitiv": true},
		{"pattern": ["corp.example.com/*"]},
		{},
	] {
		private := {"patterns": ["*.internal.example", pattern], "groups": ["developers"]}
		result := decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": private})
		result.allow == false
		startswith(messages(result)[0], "malformed policy data: private.patterns[1] must be a string or an object")
	}
}

test_pattern_object_with_syntax_opa_reads_differently_denies_every_request if {
	private := {"patterns": [{"pattern": "corp.example.com/[^x]*", "case_sensitive": true}], "groups": ["developers"]}
	result := decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": private})
	result.allow == false
	messages(result) == ["malformed policy data: private.patterns[0] \"corp.example.com/[^x]*\" is not a GOPRIVATE-style pattern (use *, ? and [...]; no **, {}, negated classes or empty elements)"]
}

# --- validation of edited data -----------------------------------------------

data_errors_with_private(private) := found if {
	found := modgate.data_errors with data.modgate.config.private as private
}

data_errors_with_blacklist(blacklist) := found if {
	found := modgate.data_errors with data.modgate.config.blacklist as blacklist
}

# fixture_data_with: the fixture policy data with some top-level keys
# replaced (not merged: object.union alone would merge nested objects).
fixture_data_with(replaced) := object.union(object.remove(fixture_config, object.keys(replaced)), replaced)

# decide_with evaluates the decision with the fixture data, some keys replaced.
decide_with(request_input, replaced) := result if {
	result := modgate.decision with input as request_input
		with data.modgate.config as fixture_data_with(replaced)
}

test_fixture_data_is_valid if {
	modgate.data_valid with data.modgate.config.private as fixture_private
		with data.modgate.config.blacklist as fixture_blacklist
		with data.modgate.config.blacklist_kinds as fixture_kinds
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

# Per decision (data_valid): a pattern OPA would match more narrowly than the
# go command denies every request, whatever module it names.
test_pattern_opa_reads_differently_denies_every_request if {
	every pattern in ["corp.example.com/*,dev.example.com/*", "corp.example.com/[^x]*", "corp.example.com/[!x]*", "[]x]", "corp.example.com/[", 7] {
		result := modgate.decision with input as module_input("zip", "example.com/fine", "v1.0.0")
			with data.modgate.config.private as {"patterns": ["*.internal.example", pattern], "groups": ["developers"]}
		result.allow == false
		startswith(messages(result)[0], "malformed policy data: private.patterns[1] ")
	}
}

# Was test_bad_pattern_denies_every_request. "**" cannot make OPA match fewer
# paths than the go command (it can only match more), so it is reported by
# data_errors (opa test, modgate policy check) but no longer denies requests.
test_double_star_pattern_reported_by_data_errors_only if {
	private := {"patterns": ["corp.example.com/**"], "groups": ["developers"]}
	errors := data_errors_with_private(private)
	some error in errors
	startswith(error, "malformed policy data: private.patterns[0] \"corp.example.com/**\"")
	decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": private}).allow
	result := decide_with(
		with_identity(module_input("zip", "corp.example.com/secret", "v1.0.0"), {"groups": ["qa"]}),
		{"private": private},
	)
	result.route == "private"
	result.allow == false
}

test_dead_patterns_reported_by_data_errors_only if {
	every pattern in [" corp.example.com/*", "corp.example.com//x", "corp.example.com/a\\b", "{corp}.example.com"] {
		private := {"patterns": ["corp.example.com/*", pattern], "groups": ["developers"]}
		count(data_errors_with_private(private)) == 1
		decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": private}).allow
	}
}

test_non_string_group_reported_by_data_errors_only if {
	private := {"patterns": ["corp.example.com/*"], "groups": ["developers", 7]}
	"malformed policy data: private.groups must be a list of strings" in data_errors_with_private(private)
	decide_with(module_input("zip", "corp.example.com/secret", "v1.0.0"), {"private": private}).allow
	result := decide_with(
		with_identity(module_input("zip", "corp.example.com/secret", "v1.0.0"), {"groups": ["qa"]}),
		{"private": private},
	)
	result.allow == false
	messages(result) == ["corp.example.com/secret is private; your groups [qa] may not fetch it (allowed: developers)"]
}

test_private_groups_not_a_list_denies_every_request if {
	result := decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": {"patterns": ["corp.example.com/*"], "groups": "developers"}})
	result.allow == false
	messages(result) == ["malformed policy data: private.groups must be a list of strings"]
}

test_private_with_an_extra_key_denies_every_request if {
	result := decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"private": {"patterns": [], "groups": [], "deny": []}})
	result.allow == false
	startswith(messages(result)[0], "malformed policy data: private must have exactly the keys")
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
	"malformed policy data: blacklist[0] (example.com/x): unknown keys version (allowed: author, case_sensitive, expires, fixed, introduced, module, reason, ticket, versions)" in errors
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
	errors := modgate.data_errors with data.modgate.config.blacklist_kinds as ["zip", "sumdb"]
	"malformed policy data: blacklist_kinds must be a list drawn from info, latest, mod, zip" in errors
}

test_blacklist_kinds_may_be_empty if {
	modgate.data_valid with data.modgate.config.blacklist_kinds as []
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

# --- what a malformed blacklist denies ---------------------------------------

broken_entries := [
	{"module": "example.com/x", "versions": ["1.0.0"], "reason": "r"},
	{"module": "example.com/x", "versions": [], "reason": "r"},
	{"module": "example.com/x", "versions": "v1.0.0", "reason": "r"},
	{"module": "example.com/x", "versions": ["v1.0.0"], "fixed": "v1.1.0", "reason": "r"},
	{"module": "example.com/x", "version": ["v1.0.0"], "reason": "r"},
	{"module": "example.com/x", "introduced": "v1.3.0", "fixed": "v1.3.0", "reason": "r"},
	{"module": "example.com/x", "introduced": "v2.0.0", "fixed": "v1.0.0", "reason": "r"},
	{"module": "example.com/x", "fixed": "latest", "reason": "r"},
	{"module": "example.com/x", "introduced": "v1.0", "reason": "r"},
	{"module": "example.com/x", "versions": ["v1.0.0"]},
	{"module": "example.com/x", "versions": ["v1.0.0"], "reason": " "},
	{"module": "example.com/x", "versions": ["v1.0.0"], "reason": "r", "ticket": 42},
]

# An entry can only change decisions about its own module: a broken entry
# denies every request that names that module (any kind, checksum database
# lookups too) and leaves the other modules alone. data_errors reports it.
test_broken_entry_denies_its_module_only if {
	every entry in broken_entries {
		blacklist := array.concat(fixture_blacklist, [entry])
		count(data_errors_with_blacklist(blacklist)) > 0
		every request_input in [
			module_input("zip", "example.com/x", "v9.9.9"),
			module_input("mod", "example.com/x", "v1.0.0"),
			module_input("list", "example.com/x", null),
			module_input("latest", "example.com/x", null),
			with_request(module_input("info", "example.com/x", "main"), {"version_is_query": true}),
			sumdb_input("lookup", "example.com/x", "v1.0.0"),
		] {
			result := decide_with(request_input, {"blacklist": blacklist})
			result.allow == false
			startswith(messages(result)[0], "malformed policy data: blacklist[7] (example.com/x): ")
		}
		decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"blacklist": blacklist}).allow
		decide_with(sumdb_input("tile", null, null), {"blacklist": blacklist}).allow
		decide_with(module_input("zip", "example.com/insecure", "v1.0.1"), {"blacklist": blacklist}).allow == false
	}
}

# An entry that could match nothing, whatever module is requested, denies
# every request: it may have been meant for any of them.
test_entry_that_cannot_match_denies_every_request if {
	every entry in [
		"example.com/x@v1.0.0",
		["example.com/x"],
		null,
		{"modul": "example.com/x", "versions": ["v1.0.0"], "reason": "r"},
		{"versions": ["v1.0.0"], "reason": "r"},
		{"module": 7, "versions": ["v1.0.0"], "reason": "r"},
		{"module": ["example.com/x"], "versions": ["v1.0.0"], "reason": "r"},
	] {
		blacklist := array.concat(fixture_blacklist, [entry])
		result := decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"blacklist": blacklist})
		result.allow == false
		startswith(messages(result)[0], "malformed policy data: blacklist[7]")
	}
}

test_blacklist_not_a_list_denies_every_request if {
	result := decide_with(sumdb_input("tile", null, null), {"blacklist": {"module": "example.com/x", "versions": ["v1.0.0"], "reason": "r"}})
	result.allow == false
	messages(result) == ["malformed policy data: blacklist must be a list of entries"]
}

# A module path that is not one can never equal a requested module (input
# validation rejects such requests), so the entry is dead, like a misspelt
# path: data_errors reports it, decisions are not affected.
test_entry_module_that_is_no_module_path_reported_by_data_errors_only if {
	every module in ["Example.com/x", "example.com/x/", "example.com/a b", "", "https://example.com/x"] {
		blacklist := array.concat(fixture_blacklist, [{"module": module, "versions": ["v1.0.0"], "reason": "r"}])
		"malformed policy data: blacklist[7]" in {substring(error, 0, 35) | some error in data_errors_with_blacklist(blacklist)}
		decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"blacklist": blacklist}).allow
		decide_with(module_input("zip", "example.com/insecure", "v1.0.1"), {"blacklist": blacklist}).allow == false
	}
}

# blacklist_kinds only matters for modules that have entries: a misspelt kind
# ("zipp") would leave .zip of those modules unblocked, so it denies every
# request for them, and only for them.
test_malformed_blacklist_kinds_denies_modules_with_entries if {
	every kinds in [["zipp", "info"], ["zip", "sumdb"], "zip", {"zip": true}, [null]] {
		result := decide_with(module_input("zip", "example.com/insecure", "v1.0.0"), {"blacklist_kinds": kinds})
		result.allow == false
		startswith(messages(result)[0], "malformed policy data: blacklist_kinds must be a list drawn from")
		decide_with(module_input("mod", "example.com/leaky", "v1.0.0"), {"blacklist_kinds": kinds}).allow == false
		decide_with(module_input("zip", "example.com/fine", "v1.0.0"), {"blacklist_kinds": kinds}).allow
	}
}

# --- the per-decision checks and data_errors agree ---------------------------

# Whole data.modgate.config documents: the fixture with keys replaced, keys
# removed or renamed, unknown keys added, and no object at all.
config_variants := array.concat(
	[fixture_data_with(replaced) | some replaced in replaced_variants],
	[
		{},
		object.remove(fixture_config, {"private"}),
		object.remove(fixture_config, {"blacklist"}),
		object.remove(fixture_config, {"revision", "blacklist_kinds"}),
		renamed(fixture_config, "private", "privat"),
		renamed(fixture_config, "private", "Private"),
		renamed(fixture_config, "blacklist", "blacklists"),
		renamed(fixture_config, "blacklist_kinds", "blacklist_kind"),
		object.union(fixture_config, {"extra": []}),
		object.union(fixture_config, {"revision": 7}),
		object.union(fixture_config, {"revision": null}),
		{"modgate": fixture_config},
		{"config": fixture_config},
		object.union(fixture_config, {"modgate": {}}),
		[fixture_config],
		"config",
		null,
	],
)

replaced_variants := [
	{},
	{"private": {"patterns": [], "groups": []}},
	{"private": {"pattern": ["corp.example.com/*"], "groups": ["developers"]}},
	{"private": {"patterns": ["corp.example.com/*"]}},
	{"private": {"patterns": ["corp.example.com/*"], "groups": ["developers"], "x": 1}},
	{"private": ["corp.example.com/*"]},
	{"private": null},
	{"private": {"patterns": "corp.example.com/*", "groups": ["developers"]}},
	{"private": {"patterns": ["a,b"], "groups": []}},
	{"private": {"patterns": ["[]x]"], "groups": []}},
	{"private": {"patterns": ["corp.example.com/**"], "groups": []}},
	{"private": {"patterns": [7], "groups": []}},
	{"private": {"patterns": [], "groups": [7]}},
	{"private": {"patterns": [{"pattern": "corp.example.com/*"}], "groups": []}},
	{"private": {"patterns": [{"pattern": "corp.example.com/*", "case_sensitive": true}], "groups": []}},
	{"private": {"patterns": [{"patern": "corp.example.com/*"}], "groups": []}},
	{"private": {"patterns": [{"pattern": "corp.example.com/*", "case_sensitive": "yes"}], "groups": []}},
	{"private": {"patterns": [{"pattern": "corp.example.com/*", "case_sensitiv": true}], "groups": []}},
	{"private": {"patterns": [{"pattern": "a,b"}], "groups": []}},
	{"private": {"patterns": [{"pattern": "corp.example.com/**"}], "groups": []}},
	{"blacklist": []},
	{"blacklist": {}},
	{"blacklist": ["x"]},
	{"blacklist": [{"versions": ["v1.0.0"], "reason": "r"}]},
	{"blacklist": [{"module": "example.com/fine", "versions": ["1.0.0"], "reason": "r"}]},
	{"blacklist": [{"module": "Example.com/fine", "versions": ["v1.0.0"], "reason": "r"}]},
	{"blacklist": [{"module": "example.com/Fine", "versions": ["v1.0.0"], "reason": "r", "case_sensitive": true}]},
	{"blacklist": [{"module": "example.com/Fine", "versions": ["v1.0.0"], "reason": "r", "case_sensitive": "true"}]},
	{"blacklist_kinds": []},
	{"blacklist_kinds": ["zipp"]},
	{"blacklist_kinds": "zip"},
]

renamed(config, old, new) := object.union(object.remove(config, {old}), {new: config[old]})

requests_for_variants := [
	module_input("zip", "example.com/fine", "v1.0.0"),
	module_input("zip", "example.com/insecure", "v1.0.1"),
	module_input("zip", "corp.example.com/secret", "v1.0.0"),
	sumdb_input("tile", null, null),
]

# data_valid_with and data_rules_with: whether data_valid, and the three
# rules it copies, hold for a request with a config; false when undefined.
data_valid_with(config, request_input) if {
	modgate.data_valid with input as request_input with data.modgate.config as config
} else := false

data_rules_with(config, request_input) if {
	modgate._config_shape_ok with input as request_input with data.modgate.config as config
	modgate._private_data_ok with input as request_input with data.modgate.config as config
	modgate._blacklist_data_ok with input as request_input with data.modgate.config as config
	modgate._ci_data_ok with input as request_input with data.modgate.config as config
} else := false

data_errors_with(config) := found if {
	found := modgate.data_errors with data.modgate.config as config
}

config_ok_with(config) if {
	modgate.config_ok with data.modgate.config as config
} else := false

# data_valid copies the bodies of three rules; it must always equal them.
test_data_valid_fast_path_equals_the_rules if {
	every config in config_variants {
		every request_input in requests_for_variants {
			data_valid_with(config, request_input) == data_rules_with(config, request_input)
		}
	}
}

# Whatever denies a decision for its data is also reported by data_errors,
# the list operators check before rolling out.
test_every_data_denial_is_in_data_errors if {
	every config in config_variants {
		every request_input in requests_for_variants {
			valid_or_reported(config, request_input)
		}
	}
}

valid_or_reported(config, request_input) if data_valid_with(config, request_input)

valid_or_reported(config, _) if count(data_errors_with(config)) > 0

# config_ok holds exactly when no request is denied for its data (for the
# requests here, which touch every part of the fixture data), and when it
# does not hold, data_errors says why.
test_config_ok_means_no_request_is_denied_for_data if {
	every config in config_variants {
		config_ok_with(config) == valid_for_every_request(config)
		config_ok_or_reported(config)
	}
}

valid_for_every_request(config) if {
	every request_input in requests_for_variants {
		data_valid_with(config, request_input)
	}
} else := false

config_ok_or_reported(config) if config_ok_with(config)

config_ok_or_reported(config) if count(data_errors_with(config)) > 0
