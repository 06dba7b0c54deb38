# METADATA
# title: modgate
# description: |
#   Decides, for every request the modgate gateway receives (Go module proxy
#   protocol and checksum database), whether it may be served and which
#   upstream serves it. Input and output are described in docs/policy.md.
package modgate

# METADATA
# title: decision
# description: |
#   The only document the gateway reads (POST /v1/data/modgate/decision).
#   Always defined, for any input: every field has a default or an else.
# entrypoint: true
decision := {
	"allow": true,
	"reasons": [],
	"route": route,
	"revision": policy_revision,
} if {
	allow
} else := {
	"allow": false,
	"reasons": reasons,
	"route": route,
	"revision": policy_revision,
}

# Fail closed: allow is true only when the input and the policy data were
# proven well-formed AND no access rule denies. Undefined means false.
#
# This is the hot path, evaluated on every request: input_valid and data_valid
# are the cheap per-decision checks (input.rego, policy_data.rego), and the
# access rules are plain conditions. Denial messages (sprintf) are built only
# for the reasons of a denied request, and a denial never depends on its
# message being buildable.
default allow := false

allow if {
	input_valid
	data_valid
	authenticated
	not private_denied
	not ci_ref_denied
	not sumdb_denied
	not blacklisted
}

authenticated if {
	input.identity.authenticated == true
	object.get(input.identity, "method", "token") != "anonymous"
}

access_denials := ((private_denials | ci_ref_denials) | sumdb_denials) | blacklist_denials

authentication_reason := "authentication required: send a token (Authorization: Bearer, or as the .netrc password)"

# Reasons explain a denial, most basic problem first: a malformed input or
# policy data, then a missing identity, then the access rules. Empty when
# allowed. The default covers anything unforeseen, so a denial always says so.
#
# A malformed input or policy data is explained by input_errors and
# data_errors, the thorough (slow) explanations, which are evaluated only
# here. When the data denied the request, every problem in the data is
# listed, also those that alone would not have denied it (policy_data.rego).
default reasons := ["denied by policy default: no rule could decide this request"]

reasons := [] if {
	allow
} else := _printable(input_errors | data_errors) if {
	not data_valid
	count(input_errors | data_errors) > 0
} else := _printable(input_errors) if {
	not input_valid
	count(input_errors) > 0
} else := ["malformed policy input: rejected"] if {
	not input_valid
} else := ["malformed policy data: rejected"] if {
	not data_valid
} else := [authentication_reason] if {
	not authenticated
} else := _printable(access_denials) if {
	count(access_denials) > 0
}

# route: which upstream list serves the request. Requests that name no module
# (checksum database supported/tile) are public.
default route := "public"

route := "private" if private_module

# revision: which policy decided. When OPA serves a bundle that owns the
# modgate root (`modgate policy bundle` builds one), its manifest revision: the
# content hash modgate computed from the files, that nobody bumps by hand. Else
# the policy data revision compliance bumps with every change; "unknown" when
# neither is a non-empty string.
policy_revision := revision if {
	some bundle in data.system.bundles
	"modgate" in bundle.manifest.roots
	revision := bundle.manifest.revision
	is_string(revision)
	revision != ""
} else := revision if {
	revision := data.modgate.config.revision
	is_string(revision)
	revision != ""
} else := "unknown"

# The go command prints each reason on its own line after "blocked by policy: ",
# so a reason must be one line: control characters (newlines in a group name,
# say) become spaces, and very long reasons are cut.
_printable(messages) := [_one_line(message) | some message in sort(messages)]

_one_line(text) := _clip(regex.replace(text, `[\x00-\x1f\x7f\x{85}\x{2028}\x{2029}]+`, " "), 300)
