package modgate

# Semantic versions as the go command writes them in proxy requests: a leading
# "v", a full MAJOR.MINOR.PATCH, an optional pre-release (pseudo-versions such
# as v0.0.0-20240101000000-abcdefabcdef are pre-releases) and, for v2+ modules
# without a go.mod, the build suffix "+incompatible".

# canonical_version holds when version is a string the gateway may compare.
canonical_version(version) if {
	is_string(version)
	startswith(version, "v")
	semver.is_valid(trim_suffix(trim_prefix(version, "v"), "+incompatible")) # _bare_semver
}

# compare_versions is -1, 0 or 1 like semver.compare, and undefined (never
# "equal") when either side is not a canonical version.
compare_versions(a, b) := semver.compare(_bare_semver(a), _bare_semver(b)) if {
	canonical_version(a)
	canonical_version(b)
}

# semver.compare wants no leading "v"; "+incompatible" is build metadata, which
# semantic versioning ignores when ordering, but it is stripped explicitly so
# the comparison never depends on that detail.
_bare_semver(version) := trim_suffix(trim_prefix(version, "v"), "+incompatible")
