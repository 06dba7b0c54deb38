package modgate

# hidden_versions: the versions of an upstream's @v/list answer that the gateway
# removes before serving it (POST /v1/data/modgate/hidden_versions, asked with the
# list request's input and request.versions, the versions the upstream listed).
#
# A version is hidden exactly when it cannot be fetched by name: the blacklist
# refuses its .zip (blacklist_kinds holds "zip") and an entry matches it. So
# `go list -m -versions` shows only what `go get` can have, and the go command,
# which picks the newest listed version for `go get -u`, lands on an allowed
# one. Its .mod stays readable (module graphs that merely mention it resolve).
#
# Only decided for a well-formed list request and well-formed policy data;
# otherwise every listed version is hidden (fail closed: which ones are blocked
# cannot be told). The gateway refuses the request when this document cannot be
# read at all.
default hidden_versions := []

hidden_versions := sort([version |
	some version in input.request.versions
	_hidden(version)
]) if {
	input.request.kind == "list"
	is_array(input.request.versions)
	input_valid
	data_valid
} else := sort([version | some version in input.request.versions]) if {
	is_array(input.request.versions)
}

_hidden(version) if {
	"zip" in _blacklist_kinds
	some entry in requested_blacklist_entries
	_entry_names_requested_module(entry)
	blacklist_entry_matches(entry, version)
}
