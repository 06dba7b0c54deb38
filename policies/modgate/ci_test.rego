package modgate_test

import data.modgate

# A GitHub Actions job's identity as the gateway sends it (tests/golden holds one).
github_job(ref) := {
	"authenticated": true,
	"subject": "ci:github:acme/builder",
	"groups": ["ci"],
	"method": "jwt",
	"details": {"provider": "github", "repository": "acme/builder", "ref": ref, "ref_type": "branch"},
}

gitlab_job(ref, ref_type) := {
	"authenticated": true,
	"subject": "ci:gitlab:acme/builder",
	"groups": ["ci"],
	"method": "jwt",
	"details": {"provider": "gitlab", "repository": "acme/builder", "ref": ref, "ref_type": ref_type},
}

ci_config := object.union(fixture_config, {
	"private": {"patterns": ["corp.example.com/*"], "groups": ["developers", "ci"]},
	"ci": {"private_refs": ["refs/heads/main", "refs/tags/*"]},
})

decide_ci(request_input) := result if {
	result := modgate.decision with input as request_input with data.modgate.config as ci_config
}

private_zip := module_input("zip", "corp.example.com/secret", "v1.0.0")

test_a_job_on_a_private_ref_fetches_private_modules if {
	every identity in [github_job("refs/heads/main"), github_job("refs/tags/v1.2.0"), gitlab_job("main", "branch"), gitlab_job("v1.2.0", "tag")] {
		result := decide_ci(with_identity(private_zip, identity))
		result.allow == true
		result.route == "private"
	}
}

test_a_job_on_another_branch_is_denied_with_the_refs_it_needs if {
	result := decide_ci(with_identity(private_zip, github_job("refs/heads/feature")))
	result.allow == false
	messages(result) == ["corp.example.com/secret is private; CI jobs may fetch it only from refs/heads/main, refs/tags/* (this job runs on refs/heads/feature)"]
}

test_a_gitlab_branch_name_is_compared_as_a_full_ref if {
	result := decide_ci(with_identity(private_zip, gitlab_job("feature", "branch")))
	messages(result) == ["corp.example.com/secret is private; CI jobs may fetch it only from refs/heads/main, refs/tags/* (this job runs on refs/heads/feature)"]
	not decide_ci(with_identity(private_zip, gitlab_job("mainline", "branch"))).allow
}

test_a_job_naming_no_ref_is_denied if {
	identity := json.remove(github_job("refs/heads/main"), ["details/ref"])
	result := decide_ci(with_identity(private_zip, identity))
	result.allow == false
	contains(messages(result)[0], "(this job runs on no ref it names)")
}

test_public_modules_and_people_are_not_affected if {
	decide_ci(with_identity(module_input("zip", "example.com/fine", "v1.0.0"), github_job("refs/heads/feature"))).allow
	decide_ci(private_zip).allow # the developer fixture, an API token
	sso := object.union(github_job("refs/heads/feature"), {"details": {"provider": null}})
	decide_ci(with_identity(private_zip, object.union(sso, {"groups": ["developers"]}))).allow
}

test_without_private_refs_ci_jobs_are_decided_by_their_groups if {
	config := object.remove(ci_config, {"ci"})
	result := modgate.decision with input as with_identity(private_zip, github_job("refs/heads/feature"))
		with data.modgate.config as config
	result.allow == true
}

test_malformed_ci_data_denies_everything if {
	every bad in [[], {"private_refs": "refs/heads/main"}, {"private_refs": [1]}, {"refs": []}] {
		config := object.union(fixture_config, {"ci": bad})
		denies_everything_saying(config, sprintf("malformed policy data: ci must be {\"private_refs\": [ref, ...]} with refs as strings (got %s)", [modgate._show(bad)]))
	}
}
