package modgate

# The blacklist: module versions that must not be downloaded. Data:
# data.modgate.blacklist (entries) and data.modgate.blacklist_kinds (the
# request kinds it applies to); see docs/policy.md.
#
# Why .mod is not in the shipped blacklist_kinds (["info", "zip", "latest"]):
# the go command reads the go.mod of every version that appears anywhere in
# the module graph, including versions that minimal version selection will
# never pick. Blocking the .mod of a bad version would break every build whose
# graph merely mentions it. Blocking .info, @latest and .zip is enough: code
# can only be built from a .zip, a bad version is never suggested by @latest,
# and `go get m@query` resolves through .info.

default blacklist_entries := []

blacklist_entries := data.modgate.blacklist

# The rule names differ from the data keys (blacklist, blacklist_kinds): rules
# and data share the data.modgate namespace and must not collide.
default blacklist_applied_kinds := {"info", "zip", "latest"}

blacklist_applied_kinds := {kind | some kind in data.modgate.blacklist_kinds} if {
	is_array(data.modgate.blacklist_kinds)
}

# The blacklist is checked whenever the version is canonical. A revision query
# (version_is_query: true, e.g. "master") is not: it names no version yet, and
# the gateway asks again with the resolved canonical version (resolved: true).
# A "query" that already is a canonical version is checked right away, so a
# mistaken version_is_query flag cannot skip the blacklist.
_blacklist_applies if {
	input.request.kind in blacklist_applied_kinds
	input.request.kind in module_kinds
	canonical_version(input.request.version)
}

blacklist_denials contains msg if {
	_blacklist_applies
	some entry in blacklist_entries
	entry.module == input.request.module
	blacklist_entry_matches(entry, input.request.version)
	msg := _blacklist_reason(entry)
}

# An entry lists exact versions ...
blacklist_entry_matches(entry, version) if {
	some listed in entry.versions
	compare_versions(listed, version) == 0
}

# ... or a range introduced <= version < fixed, where a missing bound is open
# (an entry with neither bound blocks every version of the module).
blacklist_entry_matches(entry, version) if {
	not "versions" in object.keys(entry)
	_at_or_after_introduced(entry, version)
	_before_fixed(entry, version)
}

_at_or_after_introduced(entry, _) if not "introduced" in object.keys(entry)

_at_or_after_introduced(entry, version) if compare_versions(version, entry.introduced) >= 0

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
