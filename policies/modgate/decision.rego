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
	"obligations": obligations,
} if {
	allow
} else := {
	"allow": false,
	"reasons": reasons,
	"route": route,
	"revision": policy_revision,
	"obligations": obligations,
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
#
# Each reason is an object {"code", "message", "rule"} (decision contract v2,
# docs/policy.md): code is a stable snake_case name, rule the package.rule
# that produced it. Sorted by code, then message.
default reasons := [{
	"code": "policy_default",
	"message": "denied by policy default: no rule could decide this request",
	"rule": "modgate.reasons",
}]

reasons := [] if {
	allow
} else := _sorted(_tagged("input_malformed", "modgate.input_errors", input_errors) | _tagged("data_malformed", "modgate.data_errors", data_errors)) if {
	not data_valid
	count(input_errors | data_errors) > 0
} else := _sorted(_tagged("input_malformed", "modgate.input_errors", input_errors)) if {
	not input_valid
	count(input_errors) > 0
} else := [_reason("input_malformed", "modgate.input_valid", "malformed policy input: rejected")] if {
	not input_valid
} else := [_reason("data_malformed", "modgate.data_valid", "malformed policy data: rejected")] if {
	not data_valid
} else := [_reason("authentication_required", "modgate.authenticated", authentication_reason)] if {
	not authenticated
} else := _sorted(access_reasons) if {
	count(access_reasons) > 0
}

# The access rules' messages, each tagged with its code and rule.
access_reasons := ((_tagged("private_path_denied", "modgate.private_denials", private_denials) | _tagged("ci_ref_denied", "modgate.ci_ref_denials", ci_ref_denials)) | _tagged("sumdb_denied", "modgate.sumdb_denials", sumdb_denials)) | _tagged("blacklisted", "modgate.blacklist_denials", blacklist_denials)

_reason(code, rule, message) := {"code": code, "message": _one_line(message), "rule": rule}

_tagged(code, rule, messages) := {_reason(code, rule, message) | some message in messages}

# Deterministic order: by code, then message (objects sort by their keys in
# order, and code and message come before rule).
_sorted(tagged) := sort(tagged)

# obligations.cache_ttl_s: how long (seconds) the gateway may reuse this
# decision: 60, or 0 when a blacklist entry with an expiry date names the
# request's module, since that decision changes with the calendar. The entries
# are the ones the blacklist itself found for the module (any spelling, through
# its index), not a second scan of the whole list on every decision.
default cache_ttl_s := 60

cache_ttl_s := 0 if {
	some entry in requested_blacklist_entries
	"expires" in object.keys(entry)
}

obligations := {"log_only": false, "cache_ttl_s": cache_ttl_s}

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
_one_line(text) := _clip(regex.replace(text, `[\x00-\x1f\x7f\x{85}\x{2028}\x{2029}]+`, " "), 300)
