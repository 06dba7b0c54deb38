package modgate

# Private module paths: which requests are routed to the private upstream, and
# which groups may fetch them. Data: data.modgate.private.patterns and
# data.modgate.private.groups (docs/policy.md).

default private_patterns := []

private_patterns := data.modgate.private.patterns

default private_groups := []

private_groups := data.modgate.private.groups

# private_module holds when the request's module path matches a private
# pattern the way the go command matches GOPRIVATE.
private_module if {
	is_string(input.request.module)
	some pattern in private_patterns
	matches_private_pattern(pattern, input.request.module)
}

# matches_private_pattern mirrors module.MatchPrefixPatterns of the go command:
# a pattern with N path elements is matched against the first N elements of
# the module path, "*" never crosses a slash, and a trailing slash on the
# pattern is ignored. So "corp.example.com/*" matches corp.example.com/x and
# corp.example.com/x/y, but neither corp.example.com.evil.org/x nor
# corp.example.company/x nor the bare corp.example.com.
matches_private_pattern(pattern, module) if {
	glob_pattern := trim_right(pattern, "/")
	glob_pattern != ""
	want := count(split(glob_pattern, "/"))
	elements := split(module, "/")
	count(elements) >= want
	glob.match(glob_pattern, ["/"], concat("/", array.slice(elements, 0, want)))
}

_group_allowed if {
	some group in input.identity.groups
	group in private_groups
}

# Checksum-database requests are handled in sumdb.rego.
private_denials contains msg if {
	input.request.kind in module_kinds
	private_module
	not _group_allowed
	msg := sprintf(
		"%s is private; your groups [%s] may not fetch it (allowed: %s)",
		[input.request.module, concat(", ", input.identity.groups), _allowed_groups_text],
	)
}

_allowed_groups_text := concat(", ", private_groups) if {
	count(private_groups) > 0
} else := "none"
