package modgate_test

import data.modgate

# Every denial here must come from validation, never from an access rule.
malformed(request_input) if {
	result := decide(request_input)
	result.allow == false
	count(messages(result)) > 0
	every reason in messages(result) {
		startswith(reason, "malformed policy input: ")
	}
}

errors(request_input) := found if {
	found := modgate.input_errors with input as request_input
}

test_well_formed_inputs_have_no_errors if {
	every request_input in [
		module_input("list", "example.com/fine", null),
		module_input("info", "example.com/fine", "v1.0.0"),
		module_input("mod", "example.com/fine", "v0.0.0-20240101000000-abcdefabcdef"),
		module_input("zip", "example.com/fine", "v2.0.0+incompatible"),
		module_input("latest", "example.com/fine", null),
		with_request(module_input("latest", "example.com/fine", "v1.4.0"), {"resolved": true}),
		with_request(module_input("info", "example.com/fine", "master"), {"version_is_query": true}),
		with_request(module_input("info", "example.com/fine", "v1.4.0"), {"resolved": true}),
		sumdb_input("lookup", "example.com/fine", "v1.0.0"),
		sumdb_input("supported", null, null),
		sumdb_input("tile", null, null),
	] {
		count(errors(request_input)) == 0
		modgate.input_valid with input as request_input
	}
}

test_optional_fields_may_be_absent if {
	request_input := {
		"shape": 1,
		"request": {"kind": "zip", "module": "example.com/fine", "version": "v1.0.0", "version_is_query": false, "resolved": false},
		"identity": {"authenticated": true, "groups": ["developers"]},
	}
	decide(request_input).allow
}

test_version_number_is_malformed if {
	request_input := module_input("zip", "example.com/fine", 5)
	malformed(request_input)
	"malformed policy input: request.version must be null or string (got 5)" in errors(request_input)
}

test_groups_string_is_malformed if {
	request_input := with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"groups": "developers"})
	malformed(request_input)
	"malformed policy input: identity.groups must be a list of strings (got \"developers\")" in errors(request_input)
}

test_groups_with_a_number_is_malformed if {
	malformed(with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"groups": ["developers", 7]}))
}

test_groups_missing_is_malformed if {
	request_input := module_input("zip", "example.com/fine", "v1.0.0")
	malformed(json.remove(request_input, ["identity/groups"]))
}

test_authenticated_string_is_malformed if {
	request_input := with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"authenticated": "true"})
	malformed(request_input)
	"malformed policy input: identity.authenticated must be boolean (got \"true\")" in errors(request_input)
}

test_unknown_kind_is_malformed if {
	request_input := module_input("tarball", "example.com/fine", "v1.0.0")
	malformed(request_input)
	"malformed policy input: request.kind must be one of info, latest, list, mod, sumdb, zip (got \"tarball\")" in errors(request_input)
}

test_wrong_shape_is_malformed if {
	malformed(object.union(module_input("zip", "example.com/fine", "v1.0.0"), {"shape": 2}))
	malformed(object.union(module_input("zip", "example.com/fine", "v1.0.0"), {"shape": "1"}))
	malformed(json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["shape"]))
}

test_missing_request_is_malformed if {
	request_input := json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request"])
	malformed(request_input)
	"malformed policy input: request must be an object (got missing)" in errors(request_input)
}

test_module_number_is_malformed if {
	malformed(module_input("zip", 42, "v1.0.0"))
}

test_module_null_for_a_module_kind_is_malformed if {
	request_input := module_input("zip", null, "v1.0.0")
	malformed(request_input)
	"malformed policy input: request.module must be set for kind zip" in errors(request_input)
}

test_upper_case_host_is_malformed if {
	# Would otherwise dodge "corp.example.com/*" and go to the public upstream.
	malformed(module_input("zip", "Corp.Example.com/secret", "v1.0.0"))
}

test_module_with_empty_or_odd_elements_is_malformed if {
	every module in ["", "/corp.example.com/x", "corp.example.com//x", "corp.example.com/x/", "example.com/a b", "example.com/a\nb"] {
		malformed(module_input("zip", module, "v1.0.0"))
	}
}

test_non_canonical_version_without_query_flag_is_malformed if {
	every version in ["master", "1.0.1", "v1.0", "v1.0.1.2", "v01.0.0"] {
		malformed(module_input("zip", "example.com/insecure", version))
		malformed(module_input("info", "example.com/insecure", version))
	}
}

test_query_flag_only_on_info if {
	request_input := with_request(module_input("zip", "example.com/insecure", "master"), {"version_is_query": true})
	malformed(request_input)
	"malformed policy input: request.version_is_query may be true only for kind info (got kind zip)" in errors(request_input)
}

test_query_and_resolved_both_true_is_malformed if {
	malformed(with_request(
		module_input("info", "example.com/insecure", "master"),
		{"version_is_query": true, "resolved": true},
	))
}

test_query_flag_as_string_is_malformed if {
	malformed(with_request(module_input("info", "example.com/insecure", "master"), {"version_is_query": "false"}))
}

test_resolved_without_version_is_malformed if {
	malformed(with_request(module_input("latest", "example.com/insecure", null), {"resolved": true}))
}

test_version_missing_for_zip_is_malformed if {
	malformed(module_input("zip", "example.com/fine", null))
	malformed(json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/version"]))
}

test_list_with_version_is_malformed if {
	malformed(module_input("list", "example.com/fine", "v1.0.0"))
}

test_sumdb_kind_without_sumdb_object_is_malformed if {
	request_input := module_input("sumdb", "example.com/fine", "v1.0.0")
	malformed(request_input)
	"malformed policy input: request.sumdb must be an object for kind sumdb" in errors(request_input)
}

test_sumdb_object_on_a_module_kind_is_malformed if {
	malformed(with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"sumdb": {"database": "sum.example.org", "kind": "lookup"}}))
}

test_unknown_sumdb_kind_is_malformed if {
	malformed(sumdb_input("latest", null, null))
}

test_sumdb_lookup_without_version_is_malformed if {
	malformed(sumdb_input("lookup", "example.com/fine", null))
}

test_sumdb_tile_with_module_is_malformed if {
	malformed(sumdb_input("tile", "example.com/fine", null))
}

test_valid_module_path if {
	modgate.valid_module_path("example.com/a/b")
	modgate.valid_module_path("github.com/Foo/bar")
	modgate.valid_module_path("golang.org/toolchain")
	modgate.valid_module_path("gopkg.in/yaml.v3")
	modgate.valid_module_path("my-host.example/a_b/c~d")
	not modgate.valid_module_path("Example.com/a")
	not modgate.valid_module_path("example.com/")
	not modgate.valid_module_path(7)
	not modgate.valid_module_path(null)
}

# The first element is a host name, lower-case letters, digits, dots and
# dashes only, as the go command requires: anything else could dodge a
# private pattern (DNS ignores case, and IDNA maps fullwidth letters).
test_first_path_element_must_be_a_plain_host_name if {
	every module in ["Corp.example.com/x", "corp_example.com/x", "ｃorp.example.com/x", "corp.example.com\t/x", "corp.example.com:443/x", " corp.example.com/x"] {
		not modgate.valid_module_path(module)
		malformed(module_input("zip", module, "v1.0.0"))
	}
}

test_optional_fields_of_the_wrong_type_are_malformed if {
	every case in [
		[with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"id": 5}), "malformed policy input: request.id must be string (got 5)"],
		[with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"id": null}), "malformed policy input: request.id must be string (got null)"],
		[with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"major": 1}), "malformed policy input: request.major must be null or string (got 1)"],
		[with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"subject": 5}), "malformed policy input: identity.subject must be null or string (got 5)"],
		[with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"method": null}), "malformed policy input: identity.method must be string (got null)"],
		[with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"method": ["anonymous"]}), "malformed policy input: identity.method must be string (got array)"],
	] {
		malformed(case[0])
		case[1] in errors(case[0])
	}
}

test_sumdb_tile_marked_resolved_is_malformed if {
	request_input := with_request(sumdb_input("tile", null, null), {"resolved": true})
	malformed(request_input)
	"malformed policy input: request.resolved is true but request.version is null" in errors(request_input)
}

test_sumdb_lookup_flagged_as_query_is_malformed if {
	malformed(with_request(sumdb_input("lookup", "example.com/fine", "v1.0.0"), {"version_is_query": true}))
}

test_sumdb_with_an_array_is_malformed if {
	malformed(with_request(sumdb_input("tile", null, null), {"sumdb": ["sum.example.org", "tile"]}))
}

test_input_that_is_not_an_object_is_malformed if {
	every request_input in [[], "x", 1, null, true, {"shape": 1}, {"shape": 1, "request": [], "identity": {}}] {
		malformed(request_input)
	}
}

# input_valid (the fast per-decision check) and input_errors (the messages)
# are written separately: they must agree on every input, and a rejected
# input must always say why.
inputs_for_agreement := [
	module_input("list", "example.com/fine", null),
	module_input("info", "example.com/fine", "v1.0.0"),
	module_input("mod", "example.com/fine", "v0.0.0-20240101000000-abcdefabcdef"),
	module_input("zip", "example.com/fine", "v2.0.0+incompatible"),
	module_input("latest", "example.com/fine", null),
	with_request(module_input("latest", "example.com/fine", "v1.4.0"), {"resolved": true}),
	with_request(module_input("latest", "example.com/fine", "v1.4.0"), {"resolved": false}),
	with_request(module_input("info", "example.com/fine", "master"), {"version_is_query": true}),
	with_request(module_input("info", "example.com/fine", "v1.4.0"), {"resolved": true}),
	with_request(module_input("info", "example.com/fine", "v1.4.0"), {"version_is_query": true}),
	sumdb_input("lookup", "example.com/fine", "v1.0.0"),
	with_request(sumdb_input("lookup", "example.com/fine", "v1.0.0"), {"resolved": true}),
	sumdb_input("supported", null, null),
	sumdb_input("tile", null, null),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/id", "request/major", "request/sumdb", "identity/subject", "identity/method"]),
	with_request(sumdb_input("tile", null, null), {"resolved": true}),
	with_request(sumdb_input("tile", null, null), {"module": "example.com/fine"}),
	with_request(sumdb_input("tile", null, null), {"version": "v1.0.0"}),
	with_request(sumdb_input("lookup", "example.com/fine", "v1.0.0"), {"version_is_query": true}),
	with_request(sumdb_input("lookup", "example.com/fine", null), {}),
	with_request(sumdb_input("lookup", "example.com/fine", "master"), {}),
	with_request(sumdb_input("lookup", "Example.com/fine", "v1.0.0"), {}),
	with_request(sumdb_input("tile", null, null), {"sumdb": {"kind": "tile"}}),
	with_request(sumdb_input("tile", null, null), {"sumdb": {"kind": "latest", "database": "d"}}),
	with_request(sumdb_input("tile", null, null), {"sumdb": null}),
	with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"sumdb": {"kind": "tile", "database": "d"}}),
	with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"id": 5}),
	with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"major": 5}),
	with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"resolved": "false"}),
	with_request(module_input("zip", "example.com/fine", "v1.0.0"), {"resolved": null}),
	with_request(module_input("list", "example.com/fine", null), {"resolved": true}),
	with_request(module_input("latest", "example.com/fine", null), {"resolved": true}),
	with_request(module_input("info", "example.com/fine", "master"), {"version_is_query": true, "resolved": true}),
	with_request(module_input("info", "example.com/fine", "main branch"), {"version_is_query": true}),
	with_request(module_input("info", "example.com/fine", 5), {"version_is_query": true}),
	with_request(module_input("zip", "example.com/fine", "master"), {"version_is_query": true}),
	module_input("zip", "example.com/fine", "master"),
	module_input("zip", "example.com/fine", null),
	module_input("zip", "example.com/fine", 5),
	module_input("zip", null, "v1.0.0"),
	module_input("zip", 42, "v1.0.0"),
	module_input("zip", "Corp.example.com/x", "v1.0.0"),
	module_input("zip", "example.com//x", "v1.0.0"),
	module_input("list", "example.com/fine", "v1.0.0"),
	module_input("sumdb", "example.com/fine", "v1.0.0"),
	module_input("tarball", "example.com/fine", "v1.0.0"),
	module_input(7, "example.com/fine", "v1.0.0"),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/kind"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/module"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/version"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/version_is_query"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["request/resolved"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["identity/authenticated"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["identity/groups"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["shape"]),
	json.remove(module_input("zip", "example.com/fine", "v1.0.0"), ["identity"]),
	with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"groups": ["a", 7]}),
	with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"groups": {"a": "b"}}),
	with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"authenticated": "true"}),
	with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"subject": 5}),
	with_identity(module_input("zip", "example.com/fine", "v1.0.0"), {"method": 5}),
	object.union(module_input("zip", "example.com/fine", "v1.0.0"), {"shape": 1.0}),
	object.union(module_input("zip", "example.com/fine", "v1.0.0"), {"shape": "1"}),
	object.union(module_input("zip", "example.com/fine", "v1.0.0"), {"request": "zip"}),
	{},
	[],
	"not an object",
]

# "valid" or "invalid", as input_valid and as input_errors see it.
input_valid_says(request_input) := "valid" if {
	modgate.input_valid with input as request_input
} else := "invalid"

input_errors_say(request_input) := "valid" if {
	count(errors(request_input)) == 0
} else := "invalid"

test_input_valid_agrees_with_input_errors if {
	every request_input in inputs_for_agreement {
		input_valid_says(request_input) == input_errors_say(request_input)
	}
}

request_version_says(version) := "canonical" if {
	modgate.request_version_canonical with input as {"request": {"version": version}}
} else := "not canonical"

canonical_version_says(version) := "canonical" if {
	modgate.canonical_version(version)
} else := "not canonical"

# request_version_canonical is canonical_version inlined for the request.
test_request_version_canonical_agrees_with_canonical_version if {
	every version in ["v1.0.0", "v2.0.0+incompatible", "v0.0.0-20240101000000-abcdefabcdef", "v1.2.3-rc.1", "1.0.0", "v1.0", "master", "", "v01.0.0", "V1.0.0", 5, null] {
		request_version_says(version) == canonical_version_says(version)
	}
}

test_query_with_white_space_is_malformed if {
	request_input := with_request(module_input("info", "example.com/fine", "main branch"), {"version_is_query": true})
	malformed(request_input)
	"malformed policy input: request.version \"main branch\" is not a valid revision query" in errors(request_input)
}

test_sumdb_database_number_is_malformed if {
	request_input := with_request(sumdb_input("tile", null, null), {"sumdb": {"database": 1}})
	malformed(request_input)
	"malformed policy input: request.sumdb.database must be a string (got 1)" in errors(request_input)
}

test_long_values_are_clipped_in_messages if {
	request_input := module_input("zip", "example.com/fine", "v1.0.0_this-is-not-a-version-and-it-is-much-longer-than-sixty-characters")
	malformed(request_input)
	some message in errors(request_input)
	contains(message, "...\" is not a canonical semantic version")
}
