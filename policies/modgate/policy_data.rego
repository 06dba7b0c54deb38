package modgate

# Validation of the policy data that compliance edits (policies/data.json,
# loaded at data.modgate). A typo there must not silently open the gateway:
# a misspelled "patterns" would route private paths to the public upstream,
# an entry without versions would match nothing. So malformed data denies
# every request with a "malformed policy data: ..." reason until it is fixed,
# and `opa test policies/` fails on the shipped data (policy_data_test.rego).
#
# Keys are optional unless noted; "revision" is never an error (a missing or
# non-string revision reads "unknown").

default data_valid := false

data_valid if {
	_private_data_ok
	_blacklist_data_ok
	_blacklist_kinds_data_ok
	count(data_errors) == 0
}

# type_name is defined for every value, even false or null, and undefined only
# for a missing key.
_has_private_data if type_name(data.modgate.private)

_has_blacklist_data if type_name(data.modgate.blacklist)

_has_blacklist_kinds_data if type_name(data.modgate.blacklist_kinds)

# --- private -----------------------------------------------------------------

_private_keys := {"patterns", "groups"}

_private_data_ok if not _has_private_data

_private_data_ok if {
	is_object(data.modgate.private)
	object.keys(data.modgate.private) == _private_keys
	is_array(data.modgate.private.patterns)
	every pattern in data.modgate.private.patterns {
		private_pattern_ok(pattern)
	}
	_string_list(data.modgate.private.groups)
}

# Patterns use the glob syntax GOPRIVATE shares with path.Match: "*", "?" and
# "[...]" classes. Anything where OPA's glob and the go command could disagree
# ("**", "{a,b}", negated classes, escapes, commas, empty elements) is
# rejected, as is a pattern OPA cannot compile.
private_pattern_ok(pattern) if {
	is_string(pattern)
	regex.match(`^[A-Za-z0-9._~*?\[\]\-]+(/[A-Za-z0-9._~*?\[\]\-]+)*/?$`, pattern)
	not contains(pattern, "**")
	not contains(pattern, "[^")
	not contains(pattern, "[!")
	is_boolean(glob.match(pattern, ["/"], "example.com"))
}

data_errors contains "malformed policy data: private must be an object with keys patterns and groups" if {
	_has_private_data
	not is_object(data.modgate.private)
}

data_errors contains msg if {
	is_object(data.modgate.private)
	object.keys(data.modgate.private) != _private_keys
	msg := sprintf(
		"malformed policy data: private must have exactly the keys groups, patterns (has: %s)",
		[concat(", ", sort(object.keys(data.modgate.private)))],
	)
}

data_errors contains "malformed policy data: private.patterns must be a list of strings" if {
	is_object(data.modgate.private)
	"patterns" in object.keys(data.modgate.private)
	not is_array(data.modgate.private.patterns)
}

data_errors contains msg if {
	some i, pattern in data.modgate.private.patterns
	is_array(data.modgate.private.patterns)
	not private_pattern_ok(pattern)
	msg := sprintf(
		"malformed policy data: private.patterns[%d] %s is not a GOPRIVATE-style pattern (use *, ? and [...]; no **, {}, negated classes or empty elements)",
		[i, _show(pattern)],
	)
}

data_errors contains "malformed policy data: private.groups must be a list of strings" if {
	is_object(data.modgate.private)
	"groups" in object.keys(data.modgate.private)
	not _string_list(data.modgate.private.groups)
}

# --- blacklist ---------------------------------------------------------------

_blacklist_data_ok if not _has_blacklist_data

_blacklist_data_ok if {
	is_array(data.modgate.blacklist)
	every entry in data.modgate.blacklist {
		blacklist_entry_ok(entry)
	}
}

_entry_keys := {"module", "versions", "introduced", "fixed", "reason", "ticket"}

blacklist_entry_ok(entry) if {
	is_object(entry)
	every key in object.keys(entry) {
		key in _entry_keys
	}
	valid_module_path(entry.module)
	_non_empty_string(entry.reason)
	_optional_string(entry, "ticket")
	_entry_versions_ok(entry)
}

_entry_versions_ok(entry) if {
	"versions" in object.keys(entry)
	not "introduced" in object.keys(entry)
	not "fixed" in object.keys(entry)
	is_array(entry.versions)
	count(entry.versions) > 0
	every version in entry.versions {
		canonical_version(version)
	}
}

_entry_versions_ok(entry) if {
	not "versions" in object.keys(entry)
	_optional_bound(entry, "introduced")
	_optional_bound(entry, "fixed")
	_bounds_ordered(entry)
}

_optional_bound(entry, key) if not key in object.keys(entry)

_optional_bound(entry, key) if canonical_version(entry[key])

_bounds_ordered(entry) if not "introduced" in object.keys(entry)

_bounds_ordered(entry) if not "fixed" in object.keys(entry)

_bounds_ordered(entry) if compare_versions(entry.introduced, entry.fixed) < 0

data_errors contains "malformed policy data: blacklist must be a list of entries" if {
	_has_blacklist_data
	not is_array(data.modgate.blacklist)
}

data_errors contains msg if {
	is_array(data.modgate.blacklist)
	some i, entry in data.modgate.blacklist
	not blacklist_entry_ok(entry)
	msg := sprintf("malformed policy data: blacklist[%d]%s: %s", [i, _entry_label(entry), _entry_problem(entry)])
}

_entry_label(entry) := sprintf(" (%s)", [entry.module]) if {
	is_string(entry.module)
} else := ""

# The first problem found, in the order a person would fix them.
_entry_problem(entry) := "must be an object" if {
	not is_object(entry)
} else := sprintf("unknown keys %s (allowed: %s)", [concat(", ", unknown), concat(", ", sort(_entry_keys))]) if {
	unknown := sort([key | some key in object.keys(entry); not key in _entry_keys])
	count(unknown) > 0
} else := "module must be a module path such as example.com/mod" if {
	not valid_module_path(object.get(entry, "module", null))
} else := "reason must be a non-empty string" if {
	not _non_empty_string(object.get(entry, "reason", null))
} else := "ticket must be a string" if {
	not _optional_string(entry, "ticket")
} else := "use either versions or introduced/fixed, not both" if {
	"versions" in object.keys(entry)
	some key in ["introduced", "fixed"]
	key in object.keys(entry)
} else := "versions must be a non-empty list of canonical versions such as v1.2.3" if {
	"versions" in object.keys(entry)
} else := "introduced must be a canonical version such as v1.2.0" if {
	not _optional_bound(entry, "introduced")
} else := "fixed must be a canonical version such as v1.3.0" if {
	not _optional_bound(entry, "fixed")
} else := "introduced must be lower than fixed" if {
	not _bounds_ordered(entry)
} else := "is not a valid entry"

# --- blacklist_kinds -----------------------------------------------------------

# .list carries no version and the checksum database is never blacklisted, so
# only these kinds make sense.
blacklist_kind_choices := {"info", "mod", "zip", "latest"}

_blacklist_kinds_data_ok if not _has_blacklist_kinds_data

_blacklist_kinds_data_ok if {
	is_array(data.modgate.blacklist_kinds)
	every kind in data.modgate.blacklist_kinds {
		kind in blacklist_kind_choices
	}
}

data_errors contains msg if {
	_has_blacklist_kinds_data
	not _blacklist_kinds_data_ok
	msg := sprintf(
		"malformed policy data: blacklist_kinds must be a list drawn from %s",
		[concat(", ", sort(blacklist_kind_choices))],
	)
}

# --- helpers -----------------------------------------------------------------

_string_list(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

_non_empty_string(value) if {
	is_string(value)
	trim_space(value) != ""
}

_optional_string(object_value, key) if not key in object.keys(object_value)

_optional_string(object_value, key) if is_string(object_value[key])
