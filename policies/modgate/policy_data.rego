package modgate

# Validation of the policy data that compliance edits. It lives in its own
# rule-free subtree, data.modgate.config: the file
# policies/modgate/config/data.json holds its keys directly, and every other
# data file in that directory merges into the same object (OPA places a data
# file by its directory). No rule may live under data.modgate.config (no rule
# named "config", no package modgate.config), so that Rego can see the top
# level of the data: it cannot list the keys of its own package.
#
# A typo there must not silently open the gateway: a misspelt "private" or
# "patterns" would route private paths to the public upstream, a misspelt
# "blacklist" or "module" would make blacklist entries match nothing.
#
# The checks come in two tiers:
#
# - data_valid runs on EVERY decision and denies it when it fails. It holds
#   the checks whose failure could make a request allowed, or routed public,
#   that the data meant to deny or route private: the top level (required
#   keys, known types, no unknown keys, no data left at the old place); the
#   structure and types of private, of blacklist and of blacklist_kinds;
#   GOPRIVATE patterns that OPA would match more narrowly than the go command;
#   and, for the blacklist entries of the requested module only, everything
#   about the entry. So a broken entry for example.com/x denies every request
#   for example.com/x, and requests for other modules (which it cannot affect)
#   go on being decided. These checks use no regular expression and no sprintf.
#
# - data_errors lists EVERY problem, the above and the rest: the shape of the
#   entries' module paths and the pattern syntax the go command would read the
#   same way as OPA, which cannot open anything (see each rule). It is too
#   slow to run per decision; `opa test` fails on the shipped data when it is
#   not empty (policy_data_test.rego), and operators query it before rolling
#   out (`modgate policy check`, or POST /v1/data/modgate/data_errors).
#
# config_ok is the input-independent summary for readiness: true only when no
# per-decision check can fail, whatever the request.

# The top level of data.modgate.config: private and blacklist are required,
# revision, blacklist_kinds and ci (ci.rego) optional; any other key is refused.
config_required_keys := {"blacklist", "private"}

config_keys := {"blacklist", "blacklist_kinds", "ci", "private", "revision"}

default data_valid := false

# data_valid is the conjunction of _config_shape_ok, _private_data_ok,
# _blacklist_data_ok and _ci_data_ok, the first three's bodies copied here to save three rule evaluations
# per decision. The tests check that it always equals the three rules.
data_valid if {
	object.remove(data.modgate.config, config_keys) == {} # no unknown key; undefined unless an object
	is_string(object.get(data.modgate.config, "revision", ""))
	not _data_at_old_place
	count(data.modgate.config.private) == 2 # required: undefined when missing
	is_array(data.modgate.config.private.patterns) # also proves that private is an object
	is_array(data.modgate.config.private.groups)
	every pattern in data.modgate.config.private.patterns {
		private_pattern_routes_like_go(pattern)
	}
	is_array(data.modgate.config.blacklist) # required: false when missing
	count(_blacklist_modules) == count(data.modgate.config.blacklist) # every entry an object with a module
	_folded_blacklist_text # ... a string (else undefined; a string is never false)
	_blacklist_modules_line_up
	every entry in requested_blacklist_entries {
		_blacklist_kinds_data_ok
		blacklist_entry_fields_ok(entry)
	}
	_ci_data_ok
}

default config_ok := false

# config_ok: every check data_valid makes holds for every request, so no
# request is denied for malformed policy data. It reads no input (the
# gateway's /readyz asks it). Problems that deny nothing (data_errors only)
# leave it true.
config_ok if {
	_config_shape_ok
	_ci_data_ok
	_private_data_ok
	_blacklist_list_ok
	_blacklist_kinds_data_ok
	every entry in data.modgate.config.blacklist {
		blacklist_entry_fields_ok(entry)
	}
}

# type_name is defined for every value, even false or null, and undefined only
# for a missing key.
_has_config if type_name(data.modgate.config)

_has_blacklist_kinds_data if type_name(data.modgate.config.blacklist_kinds)

# --- the top level -------------------------------------------------------------

# Per decision: an object with only known keys, and a string revision when
# there is one. The required keys are proven by _private_data_ok and
# _blacklist_data_ok, which read them.
_config_shape_ok if {
	object.remove(data.modgate.config, config_keys) == {} # no unknown key; undefined unless an object
	is_string(object.get(data.modgate.config, "revision", ""))
	not _data_at_old_place
}

# Policy data where it lived before data.modgate.config (a data.json at the
# root of the policies with a "modgate" wrapper, or one in policies/modgate/).
# The rules no longer read it, so whatever it says is not enforced: it denies
# every request until it is moved. Four plain lookups, one per old key
# ("_ =" holds for any value, false and null too, and calls no builtin).
_data_at_old_place if _ = data.modgate.private

_data_at_old_place if _ = data.modgate.blacklist

_data_at_old_place if _ = data.modgate.blacklist_kinds

_data_at_old_place if _ = data.modgate.revision

_old_place_keys contains "private" if type_name(data.modgate.private)

_old_place_keys contains "blacklist" if type_name(data.modgate.blacklist)

_old_place_keys contains "blacklist_kinds" if type_name(data.modgate.blacklist_kinds)

_old_place_keys contains "revision" if type_name(data.modgate.revision)

data_errors contains msg if {
	count(_old_place_keys) > 0
	msg := sprintf(
		"malformed policy data: %s found at the old place, which no rule reads; move it into policies/modgate/config/data.json (data.modgate.config), keys at the top level",
		[concat(", ", [concat(".", ["data.modgate", key]) | some key in sort(_old_place_keys)])],
	)
}

data_errors contains "malformed policy data: no policy data at data.modgate.config; it belongs in policies/modgate/config/data.json" if {
	not _has_config
}

data_errors contains msg if {
	_has_config
	not is_object(data.modgate.config)
	msg := sprintf("malformed policy data: data.modgate.config must be an object (got %s)", [type_name(data.modgate.config)])
}

data_errors contains msg if {
	is_object(data.modgate.config)
	some key in config_required_keys
	not key in object.keys(data.modgate.config)
	msg := sprintf("malformed policy data: required key %s is missing", [key])
}

data_errors contains msg if {
	is_object(data.modgate.config)
	unknown := object.keys(data.modgate.config) - config_keys
	count(unknown) > 0
	msg := sprintf(
		"malformed policy data: unknown key %s (allowed: %s)",
		[concat(", ", [_show(key) | some key in sort(unknown)]), concat(", ", sort(config_keys))],
	)
}

data_errors contains "malformed policy data: the keys go at the top level of the data file, without a \"modgate\" wrapper" if {
	is_object(data.modgate.config)
	"modgate" in object.keys(data.modgate.config)
}

data_errors contains msg if {
	is_object(data.modgate.config)
	not is_string(object.get(data.modgate.config, "revision", ""))
	msg := sprintf("malformed policy data: revision must be a string (got %s)", [_show(data.modgate.config.revision)])
}

# --- private -----------------------------------------------------------------

_private_keys := {"patterns", "groups"}

# Per decision: an object with exactly the keys patterns and groups (count 2
# and both lists present), and patterns that route as the go command would.
# A misspelt "patterns" would make nothing private. The groups only need to
# be a list: a group that is not a string matches no caller (fewer allowed,
# never more) and is reported by data_errors.
_private_data_ok if {
	count(data.modgate.config.private) == 2 # required: undefined when missing
	is_array(data.modgate.config.private.patterns) # also proves that private is an object
	is_array(data.modgate.config.private.groups)
	every pattern in data.modgate.config.private.patterns {
		private_pattern_routes_like_go(pattern)
	}
}

# private_pattern_routes_like_go: the per-decision check of a pattern, a
# string or an object {"pattern": "...", "case_sensitive": true|false}
# (nothing else: a misspelt "pattern" would match nothing). It rejects what
# would make OPA match FEWER module paths than the go command matches with the
# same GOPRIVATE, i.e. route public what developers treat as private:
#
# - a comma: GOPRIVATE splits "a,b" into two patterns, OPA's glob would look
#   for a literal comma and match nothing;
# - "[^...]" and "[!...]": the go command negates with "^" and reads "!" as a
#   character, OPA's glob the other way round;
# - a pattern OPA cannot compile (glob.match is then undefined and the pattern
#   matches nothing), such as "[]x]", which the go command accepts.
#
# The compile check compiles the glob as written: private_module matches it
# as written when it holds a [...] class or is case-sensitive, and otherwise
# in lower case, which changes only literal letters and so compiles too.
private_pattern_routes_like_go(pattern) if {
	is_string(pattern) # _pattern_glob_routes_like_go, inlined for the common case
	not contains(pattern, ",")
	not contains(pattern, "[^")
	not contains(pattern, "[!")
	is_boolean(glob.match(private_glob(pattern), ["/"], ""))
}

private_pattern_routes_like_go(pattern) if {
	count(object.remove(pattern, _pattern_object_keys)) == 0 # known keys only; undefined unless an object
	is_boolean(object.get(pattern, "case_sensitive", false))
	_pattern_glob_routes_like_go(pattern.pattern)
}

_pattern_object_keys := {"pattern", "case_sensitive"}

_pattern_glob_routes_like_go(text) if {
	is_string(text)
	not contains(text, ",")
	not contains(text, "[^")
	not contains(text, "[!")
	is_boolean(glob.match(private_glob(text), ["/"], ""))
}

# private_pattern_ok: the full check (data_errors only). Patterns use the
# glob syntax GOPRIVATE shares with path.Match: "*", "?" and "[...]" classes.
# Beyond the per-decision check it also rejects, because OPA's glob and the
# go command could read them differently or they are plain mistakes: "**",
# "{...}", escapes, white space and other characters, and empty elements.
# None of these can make OPA match fewer module paths than the go command:
# "**" and "{...}" can only make OPA match more (routed private, so denied to
# other groups; "{a,b}" has a comma and is rejected per decision anyway),
# a backslash escapes the same way in both, and the rest can appear in no
# valid module path, so both match nothing (a dead pattern, like a misspelt
# host, which no check can catch).
private_pattern_ok(pattern) if {
	private_pattern_routes_like_go(pattern)
	text := private_pattern_text(pattern)
	regex.match(`^[A-Za-z0-9._~*?\[\]\-]+(/[A-Za-z0-9._~*?\[\]\-]+)*/?$`, text)
	not contains(text, "**")
}

_has_private_data if type_name(data.modgate.config.private)

data_errors contains "malformed policy data: private must be an object with keys patterns and groups" if {
	_has_private_data
	not is_object(data.modgate.config.private)
}

data_errors contains msg if {
	is_object(data.modgate.config.private)
	object.keys(data.modgate.config.private) != _private_keys
	msg := sprintf(
		"malformed policy data: private must have exactly the keys groups, patterns (has: %s)",
		[concat(", ", sort(object.keys(data.modgate.config.private)))],
	)
}

data_errors contains "malformed policy data: private.patterns must be a list of patterns" if {
	is_object(data.modgate.config.private)
	"patterns" in object.keys(data.modgate.config.private)
	not is_array(data.modgate.config.private.patterns)
}

# A pattern object with unknown keys, no string "pattern" or a case_sensitive
# that is not a boolean.
_pattern_form_ok(pattern) if is_string(pattern)

_pattern_form_ok(pattern) if {
	count(object.remove(pattern, _pattern_object_keys)) == 0
	is_string(pattern.pattern)
	is_boolean(object.get(pattern, "case_sensitive", false))
}

data_errors contains msg if {
	some i, pattern in data.modgate.config.private.patterns
	is_array(data.modgate.config.private.patterns)
	not _pattern_form_ok(pattern)
	msg := sprintf(
		"malformed policy data: private.patterns[%d] must be a string or an object {\"pattern\": \"...\", \"case_sensitive\": true} (got %s)",
		[i, _show_pattern_form(pattern)],
	)
}

_show_pattern_form(pattern) := sprintf("keys %s", [concat(", ", sort(object.keys(pattern)))]) if {
	is_object(pattern)
} else := _show(pattern)

data_errors contains msg if {
	some i, pattern in data.modgate.config.private.patterns
	is_array(data.modgate.config.private.patterns)
	_pattern_form_ok(pattern)
	not private_pattern_ok(pattern)
	msg := sprintf(
		"malformed policy data: private.patterns[%d] %s is not a GOPRIVATE-style pattern (use *, ? and [...]; no **, {}, negated classes or empty elements)",
		[i, _show(private_pattern_text(pattern))],
	)
}

data_errors contains "malformed policy data: private.groups must be a list of strings" if {
	is_object(data.modgate.config.private)
	"groups" in object.keys(data.modgate.config.private)
	not _string_list(data.modgate.config.private.groups)
}

# --- blacklist ---------------------------------------------------------------

# Per decision: a list of objects, each with a string module (an entry without
# one could never match, so its versions would silently stay downloadable).
# Then, only when the requested module HAS entries (in any spelling): that no
# module holds a line break (it would shift the lines requested_blacklist_entries
# searches), blacklist_kinds, and every entry for that module checked in full. An entry, and the list of kinds, can
# only change decisions about modules that have entries, so broken ones deny
# exactly the requests they could have got wrong, and cost the other requests
# nothing.
_blacklist_data_ok if {
	is_array(data.modgate.config.blacklist) # required: false when missing
	count(_blacklist_modules) == count(data.modgate.config.blacklist) # every entry an object with a module
	_folded_blacklist_text # ... a string (else undefined; a string is never false)
	_blacklist_modules_line_up
	every entry in requested_blacklist_entries {
		_blacklist_kinds_data_ok
		blacklist_entry_fields_ok(entry)
	}
}

# The part of _blacklist_data_ok that reads no input (config_ok).
_blacklist_list_ok if {
	is_array(data.modgate.config.blacklist)
	count(_blacklist_modules) == count(data.modgate.config.blacklist)
	_folded_blacklist_text
	_no_line_break_in_a_module
}

# The folded lines line up with the entries (no module holds a line break),
# checked only when some line matched the requested module: a module with a
# line break is no module path, so it can never be asked for.
_blacklist_modules_line_up if _requested_module_offsets == []

_blacklist_modules_line_up if _no_line_break_in_a_module

_no_line_break_in_a_module if not contains(concat("", _blacklist_modules), "\n")

_has_blacklist_data if type_name(data.modgate.config.blacklist)

_entry_keys := {"module", "versions", "introduced", "fixed", "reason", "ticket", "author", "expires", "case_sensitive"}

# blacklist_entry_ok: the full check of an entry (data_errors).
blacklist_entry_ok(entry) if {
	blacklist_entry_fields_ok(entry)
	valid_module_path(entry.module)
}

# blacklist_entry_fields_ok: everything but the shape of the module path. It
# runs per decision on the entries whose module equals the requested one in
# lower case, which input_valid has already proven a valid module path. A
# malformed module path in an entry can match a requested module only in a
# spelling the go command could not have asked for (a host in upper case,
# say), so it cannot let anything through that the entry meant to stop: it is
# reported by data_errors, and matched case-insensitively like any entry.
blacklist_entry_fields_ok(entry) if {
	count(object.remove(entry, _entry_keys)) == 0 # known keys only; undefined unless an object
	is_string(entry.module)
	is_string(entry.reason)
	trim_space(entry.reason) != ""
	is_string(object.get(entry, "ticket", ""))
	is_string(object.get(entry, "author", ""))
	_expires_ok(entry)
	is_boolean(object.get(entry, "case_sensitive", false))
	_entry_versions_ok(entry)
}

# expires: a date (2027-01-31), the last day the entry applies (blacklist.rego).
_expires_ok(entry) if not "expires" in object.keys(entry)

_expires_ok(entry) if {
	is_string(entry.expires)
	blacklist_expiry_ns(entry.expires) # undefined unless YYYY-MM-DD
}

# Exact versions: a non-empty list of canonical versions, and no bounds.
_entry_versions_ok(entry) if {
	is_array(entry.versions)
	count(entry.versions) > 0
	count(object.filter(entry, {"introduced", "fixed"})) == 0
	every version in entry.versions {
		canonical_version(version)
	}
}

# A range: no versions, each bound present canonical, introduced < fixed.
_entry_versions_ok(entry) if {
	not "versions" in object.keys(entry)
	every bound in object.filter(entry, {"introduced", "fixed"}) {
		canonical_version(bound)
	}
	_bounds_ordered(entry)
}

_optional_bound(entry, key) if not key in object.keys(entry)

_optional_bound(entry, key) if canonical_version(entry[key])

_bounds_ordered(entry) if not "introduced" in object.keys(entry)

_bounds_ordered(entry) if not "fixed" in object.keys(entry)

_bounds_ordered(entry) if compare_versions(entry.introduced, entry.fixed) < 0

data_errors contains "malformed policy data: blacklist must be a list of entries" if {
	_has_blacklist_data
	not is_array(data.modgate.config.blacklist)
}

data_errors contains msg if {
	is_array(data.modgate.config.blacklist)
	some i, entry in data.modgate.config.blacklist
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
} else := "author must be a string" if {
	not _optional_string(entry, "author")
} else := "expires must be a date such as 2027-01-31" if {
	not _expires_ok(entry)
} else := "case_sensitive must be true or false" if {
	not is_boolean(object.get(entry, "case_sensitive", false))
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

# data_warnings: what is worth fixing in the data but wrong with nothing: it
# neither denies a request nor stops the gateway from starting, and
# `modgate policy check` prints it. An entry past its expiry applies to nothing:
# remove it, or extend it if it still should apply. Checked against the clock of
# whoever asks, not per decision.
data_warnings contains msg if {
	is_array(data.modgate.config.blacklist)
	some i, entry in data.modgate.config.blacklist
	blacklist_entry_ok(entry)
	"expires" in object.keys(entry)
	time.now_ns() >= blacklist_expiry_ns(entry.expires)
	msg := sprintf(
		"policy data: blacklist[%d] (%s): expired on %s and no longer applies; remove it, or extend expires",
		[i, entry.module, entry.expires],
	)
}

# --- blacklist_kinds -----------------------------------------------------------

# .list carries no version and the checksum database is never blacklisted, so
# only these kinds make sense.
blacklist_kind_choices := {"info", "mod", "zip", "latest"}

# Per decision only for a module that has blacklist entries (see
# _blacklist_data_ok): a misspelt kind ("zipp") would leave that kind
# unblocked, but only for modules the blacklist names.

_blacklist_kinds_data_ok if {
	is_array(data.modgate.config.blacklist_kinds)
	every kind in data.modgate.config.blacklist_kinds {
		kind in blacklist_kind_choices
	}
} else if {
	not _has_blacklist_kinds_data
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
