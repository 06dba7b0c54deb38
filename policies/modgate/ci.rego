package modgate

# CI jobs and private modules: a job's OIDC identity (a [[jwt.issuers]] preset,
# docs/configuration.md) carries the ref it runs on in identity.details, so the
# policy can tell a build of the protected main branch from a pull request's
# branch. With data.modgate.config.ci.private_refs set, a CI job fetches private
# modules only when it runs on one of those refs: a workflow on a feature
# branch, which anyone with push access can edit, cannot copy private code out.
# People, API tokens and client certificates are not affected; without the key
# nothing changes.
#
# Refs are compared in full (refs/heads/main, refs/tags/v1.2.0). GitHub sends
# them so; GitLab sends the bare name with ref_type, completed here. A ref ending
# in "*" matches every ref that starts with what comes before (refs/tags/*).

default _ci_private_refs := []

_ci_private_refs := data.modgate.config.ci.private_refs

ci_job if {
	input.identity.method == "jwt"
	is_string(input.identity.details.provider)
}

ci_full_ref := ref if {
	ref := input.identity.details.ref
	startswith(ref, "refs/")
} else := concat("", ["refs/heads/", input.identity.details.ref]) if {
	input.identity.details.ref_type == "branch"
} else := concat("", ["refs/tags/", input.identity.details.ref]) if {
	input.identity.details.ref_type == "tag"
}

_ci_ref_allowed if {
	some allowed in _ci_private_refs
	_ci_ref_matches(allowed, ci_full_ref)
}

_ci_ref_matches(allowed, ref) if allowed == ref

_ci_ref_matches(allowed, ref) if {
	endswith(allowed, "*")
	startswith(ref, trim_suffix(allowed, "*"))
}

# ci_ref_denied: a private module requested by a CI job whose ref is not one
# of the private refs (or that names no ref at all).
ci_ref_denied if {
	count(_ci_private_refs) > 0
	ci_job
	private_module
	input.request.kind in {"list", "info", "mod", "zip", "latest"}
	not _ci_ref_allowed
}

ci_ref_denials contains msg if {
	ci_ref_denied
	msg := sprintf(
		"%s is private; CI jobs may fetch it only from %s (this job runs on %s)",
		[input.request.module, concat(", ", [ref | some ref in _ci_private_refs; is_string(ref)]), _ci_ref_text],
	)
}

_ci_ref_text := ci_full_ref if is_string(ci_full_ref)

else := "no ref it names"

# --- its policy data (policy_data.rego) --------------------------------------

_has_ci_data if type_name(data.modgate.config.ci)

# Optional; when present, an object with only private_refs, a list of strings.
# A malformed ci denies every request (it could have meant to deny some).
_ci_data_ok if not _has_ci_data

_ci_data_ok if {
	object.remove(data.modgate.config.ci, {"private_refs"}) == {}
	is_array(data.modgate.config.ci.private_refs)
	every ref in data.modgate.config.ci.private_refs {
		is_string(ref)
	}
}

data_errors contains msg if {
	_has_ci_data
	not _ci_data_ok
	msg := sprintf(
		"malformed policy data: ci must be {\"private_refs\": [ref, ...]} with refs as strings (got %s)",
		[_show(data.modgate.config.ci)],
	)
}
