package modgate

# Private module paths: which requests are routed to the private upstream, and
# which groups may fetch them. Data: data.modgate.config.private.patterns and
# data.modgate.config.private.groups (docs/policy.md).

default private_patterns := []

private_patterns := data.modgate.config.private.patterns

default private_groups := []

private_groups := data.modgate.config.private.groups

# private_module holds when the request's module path matches a private
# pattern the way the go command matches GOPRIVATE, except that case is
# folded: a code host such as GitHub serves one repository under every
# spelling of its path, so github.com/MyOrg/secret is the same code as
# github.com/myorg/secret and must not be routed public because its case
# differs from the pattern. A pattern given as {"pattern": ..., "case_sensitive":
# true} is matched as written. A private that is not an object with a list of
# well-formed patterns denies every request (data_valid).
private_module if {
	is_string(input.request.module)
	some pattern in data.modgate.config.private.patterns
	_private_pattern_matches(pattern)
}

# A plain string pattern, and an object without case_sensitive: true, match
# case-insensitively: the pattern and the path, both in lower case. The
# clauses are ordered for a list of plain strings, the common case: "pattern
# .pattern" is simply undefined for a string, and no builtin runs on it.
_private_pattern_matches(pattern) if glob.match(private_glob(lower(pattern)), ["/"], request_module_folded)

# Folding a [...] class with a range can drop characters ("[A-z]" holds "_",
# "[a-z]" does not), so such a pattern is also matched as written: the union
# never matches fewer paths than the go command does.
_private_pattern_matches(pattern) if {
	contains(pattern, "[")
	glob.match(private_glob(pattern), ["/"], input.request.module)
}

_private_pattern_matches(pattern) if {
	text := pattern.pattern
	object.get(pattern, "case_sensitive", false) == false
	glob.match(private_glob(lower(text)), ["/"], request_module_folded)
}

# The object form as written: the only match of {"case_sensitive": true}, and
# the [...] safety net of the case-insensitive object form.
_private_pattern_matches(pattern) if glob.match(private_glob(pattern.pattern), ["/"], input.request.module)

# private_pattern_text: the glob of a pattern in either form.
private_pattern_text(pattern) := pattern if {
	is_string(pattern)
} else := pattern.pattern

# private_pattern_case_sensitive: only the object form with case_sensitive: true.
private_pattern_case_sensitive(pattern) if pattern.case_sensitive == true

# matches_private_pattern mirrors module.MatchPrefixPatterns of the go command
# (cmd/go/internal/... calls golang.org/x/mod/module.MatchPrefixPatterns for
# GOPRIVATE, GONOPROXY and GONOSUMDB), which is case-sensitive:
# a pattern with N path elements is matched against the first N elements of
# the module path, "*" never crosses a slash, and a trailing slash on the
# pattern is ignored. So "corp.example.com/*" matches corp.example.com/x and
# corp.example.com/x/y, but neither corp.example.com.evil.org/x nor
# corp.example.company/x nor the bare corp.example.com.
matches_private_pattern(pattern, module) if glob.match(private_glob(pattern), ["/"], module)

# matches_private_pattern_folded: what private_module does with one pattern
# (string or object form) for a module path; the tests compare the two.
matches_private_pattern_folded(pattern, module) if {
	not private_pattern_case_sensitive(pattern)
	matches_private_pattern(lower(private_pattern_text(pattern)), lower(module))
}

matches_private_pattern_folded(pattern, module) if matches_private_pattern(private_pattern_text(pattern), module)

# private_glob turns a pattern into one glob over the whole module path:
# the pattern (without a trailing slash) followed by nothing or by "/" and
# anything ("**" crosses slashes). With "/" as the only delimiter, "*", "?"
# and the pattern's literal slashes cannot match across elements, so the
# pattern can only match the first N elements, exactly as the go command
# matches it against the first N elements after cutting the path there.
# In general OPA matches when the pattern matches the path cut after ANY
# element, the go command when it matches the path cut after N elements;
# that cut is one of those, so OPA never matches fewer paths. It matches more
# only for patterns whose "**" or "/" inside a [...] class lets them match a
# different number of elements (data_errors rejects "**"). One glob, compiled
# once and cached by OPA, instead of splitting and re-joining the path for
# every pattern on every decision.
private_glob(pattern) := concat("", [trim_right(pattern, "/"), "{,/**}"])

_group_allowed if {
	some group in input.identity.groups
	group in private_groups
}

# private_denied: a private module requested by someone outside the allowed
# groups. Checksum-database requests are handled in sumdb.rego. The decision
# denies on this rule; the message is built only for the reasons.
private_denied if {
	input.request.kind in {"list", "info", "mod", "zip", "latest"} # module_kinds, spelt out: every decision reads this
	private_module
	not _group_allowed
}

private_denials contains msg if {
	private_denied
	msg := sprintf(
		"%s is private; your groups [%s] may not fetch it (allowed: %s)",
		[input.request.module, concat(", ", input.identity.groups), _allowed_groups_text],
	)
}

# Only the string groups: a malformed group list denies nobody more or less,
# and its message must still be buildable.
_allowed_groups_text := concat(", ", [group | some group in private_groups; is_string(group)]) if {
	count(private_groups) > 0
} else := "none"

# client_settings: what `modgate client setup` writes into a developer's go
# environment, read by the gateway's GET /-/client-settings: the private
# patterns as written, for GONOSUMDB (the public checksum database must not be
# asked about them; docs/developers.md). Patterns of a malformed entry are left
# out: the decision denies on them anyway.
client_settings := {"private_patterns": [text |
	some pattern in private_patterns
	text := private_pattern_text(pattern)
	is_string(text)
]}
