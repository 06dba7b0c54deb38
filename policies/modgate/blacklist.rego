package modgate

# The blacklist: module versions that must not be downloaded. Data:
# data.modgate.config.blacklist (entries) and data.modgate.config.blacklist_kinds
# (the request kinds it applies to); see docs/policy.md.
#
# Why .mod is not in the shipped blacklist_kinds (["info", "zip", "latest"]):
# the go command reads the go.mod of every version that appears anywhere in
# the module graph, including versions that minimal version selection will
# never pick. Blocking the .mod of a bad version would break every build whose
# graph merely mentions it. Blocking .info, @latest and .zip is enough: code
# can only be built from a .zip, a bad version is never suggested by @latest,
# and `go get m@query` resolves through .info.

default blacklist_entries := []

blacklist_entries := data.modgate.config.blacklist

blacklist_applied_kinds := {kind | some kind in _blacklist_kinds}

# The kinds as read on the hot path: the list from the data, or the default
# when the key is missing. A blacklist_kinds that is not a list of known kinds
# denies every request for a module that has blacklist entries (data_valid),
# so what the blacklist would make of it never matters.
_blacklist_kinds := data.modgate.config.blacklist_kinds if {
	_has_blacklist_kinds_data
} else := ["info", "zip", "latest"]

# The entries about the requested module, found once per decision (a module
# request or a sumdb lookup; none for requests that name no module). Only
# these can affect the decision, so only these are checked in full on the
# hot path (policy_data.rego).
#
# Module paths are compared case-insensitively: a code host such as GitHub
# serves one repository under every spelling of its path, so an entry for
# github.com/sirupsen/logrus must also stop github.com/Sirupsen/logrus. An
# entry with "case_sensitive": true applies only to its exact spelling
# (_entry_names_requested_module), but it is found, and so checked, for every
# spelling: were its case_sensitive malformed, it might have been meant to
# apply to all of them.
requested_blacklist_entries := [data.modgate.config.blacklist[i] |
	some offset in _requested_module_offsets
	i := count(indexof_n(substring(_folded_blacklist_text, 0, offset), "\n")) # entries before it
]

# How the entries are found cheaply. On the development VM OPA spends about
# 1-2 µs on each element it iterates and on each builtin call, and the
# blacklist is read on every decision. So the module paths are collected in one pass, joined one
# per line and folded with ONE lower() call, and ONE indexof_n() finds the
# lines that hold the requested module; a match's index in the blacklist is
# the number of line breaks before it. No comparison runs per entry.
#
# The lines line up with the entries only when every entry is an object with
# a string module (_blacklist_modules has one per entry, the concat is
# defined) and no module holds a line break; data_valid checks all three
# (the last only when something matched: _blacklist_modules_line_up).
# Without entries the text is "\n\n", where no module path can be found.
_blacklist_modules := [entry.module | some entry in data.modgate.config.blacklist]

# "\n" + every module in lower case, each followed by "\n"; undefined when a
# module is not a string.
_folded_blacklist_text := lower(concat("\n", ["", concat("\n", _blacklist_modules), ""]))

# Where "\n<requested module in lower case>\n" starts in the text (overlapping
# matches included: two entries for one module are two adjacent lines). None
# for a request that names no module.
default _requested_module_offsets := []

_requested_module_offsets := indexof_n(_folded_blacklist_text, concat("", ["\n", request_module_folded, "\n"]))

# Whether an entry found above applies to the request as spelt.
_entry_names_requested_module(entry) if object.get(entry, "case_sensitive", false) == false

_entry_names_requested_module(entry) if entry.module == input.request.module

# The blacklist is checked whenever the version is canonical. A revision query
# (version_is_query: true, e.g. "master") is not: it names no version yet, and
# the gateway asks again with the resolved canonical version (resolved: true).
# A "query" that already is a canonical version is checked right away, so a
# mistaken version_is_query flag cannot skip the blacklist.
#
# blacklisted: the requested version is blocked. The decision denies on this
# rule, not on the messages below, so a message that could not be built never
# turns a denial into an allow (reasons then falls back to its default).
blacklisted if {
	some entry in requested_blacklist_entries # usually none: cheapest test first
	input.request.kind in module_kinds # never a checksum database lookup
	input.request.kind in _blacklist_kinds
	request_version_canonical
	_entry_names_requested_module(entry)
	blacklist_entry_matches(entry, input.request.version)
}

blacklist_denials contains msg if {
	blacklisted
	some entry in requested_blacklist_entries
	_entry_names_requested_module(entry)
	blacklist_entry_matches(entry, input.request.version)
	msg := _blacklist_reason(entry)
}

# An entry lists exact versions ...
blacklist_entry_matches(entry, version) if {
	_in_force(entry)
	some listed in entry.versions
	compare_versions(listed, version) == 0
}

# ... or a range introduced <= version < fixed, where a missing bound is open
# (an entry with neither bound blocks every version of the module).
blacklist_entry_matches(entry, version) if {
	_in_force(entry)
	not "versions" in object.keys(entry)
	_at_or_after_introduced(entry, version)
	_before_fixed(entry, version)
}

_at_or_after_introduced(entry, _) if not "introduced" in object.keys(entry)

_at_or_after_introduced(entry, version) if compare_versions(version, entry.introduced) >= 0

# An entry applies until the end of its expires day (UTC). Without a usable clock
# in the input it applies: an expiry can only ever lift a denial, so an unknown
# time must never do so.
_in_force(entry) if not "expires" in object.keys(entry)

_in_force(_) if not is_number(input.time.unix_ns)

_in_force(entry) if input.time.unix_ns < blacklist_expiry_ns(entry.expires)

# blacklist_expiry_ns: the first instant an entry with this expires date no
# longer applies (the next midnight, UTC); undefined unless it is YYYY-MM-DD.
blacklist_expiry_ns(date) := time.parse_rfc3339_ns(concat("", [date, "T00:00:00Z"])) + 86400000000000

_before_fixed(entry, _) if not "fixed" in object.keys(entry)

_before_fixed(entry, version) if compare_versions(version, entry.fixed) < 0

# object.get keeps the reason defined even for a broken entry: a denial must
# never vanish because its message could not be built.
_blacklist_reason(entry) := sprintf("%s@%s is blacklisted: %s (ticket %s)", [
	input.request.module,
	input.request.version,
	object.get(entry, "reason", "no reason given"),
	entry.ticket,
]) if {
	is_string(entry.ticket)
} else := sprintf("%s@%s is blacklisted: %s", [
	input.request.module,
	input.request.version,
	object.get(entry, "reason", "no reason given"),
])
