package system.authz_test

import data.system.authz

token := "0123456789abcdef0123456789abcdef0123456789abcdef"

runtime := {"config": {"modgate": {"gateway_token": concat("", [token, "\n"])}}}

request(method, path, identity) := {
	"method": method,
	"path": path,
	"headers": {},
	"params": {},
	"identity": identity,
}

decision := ["v1", "data", "modgate", "decision"]

test_decision_with_the_gateway_token_is_allowed if {
	authz.allow with input as request("POST", decision, token) with opa.runtime as runtime
}

test_health_with_the_gateway_token_is_allowed if {
	authz.allow with input as request("GET", ["health"], token) with opa.runtime as runtime
}

test_other_modgate_documents_with_the_token_are_readable if {
	authz.allow with input as request("POST", ["v1", "data", "modgate", "config_ok"], token)
		with opa.runtime as runtime
}

test_an_unknown_token_is_refused if {
	not authz.allow with input as request("POST", decision, concat("", [token, "x"]))
		with opa.runtime as runtime
	not authz.allow with input as request("POST", decision, "guess") with opa.runtime as runtime
}

test_no_token_is_refused if {
	no_identity := object.remove(request("POST", decision, ""), ["identity"])
	not authz.allow with input as no_identity with opa.runtime as runtime
	not authz.allow with input as object.remove(request("GET", ["health"], ""), ["identity"])
		with opa.runtime as runtime
}

test_writes_are_refused_even_with_the_token if {
	every method in ["PUT", "PATCH", "DELETE"] {
		not authz.allow with input as request(method, ["v1", "data", "modgate", "blacklist"], token)
			with opa.runtime as runtime
		not authz.allow with input as request(method, ["v1", "policies", "x"], token)
			with opa.runtime as runtime
		not authz.allow with input as request(method, ["v1", "data"], token)
			with opa.runtime as runtime
	}
}

test_other_apis_are_refused_even_with_the_token if {
	not authz.allow with input as request("POST", ["v1", "query"], token) with opa.runtime as runtime
	not authz.allow with input as request("GET", ["v1", "policies"], token) with opa.runtime as runtime
	not authz.allow with input as request("POST", ["v1", "data", "system", "authz"], token)
		with opa.runtime as runtime
	not authz.allow with input as request("POST", ["v1", "data"], token) with opa.runtime as runtime
}

test_without_a_configured_token_nothing_is_allowed if {
	not authz.allow with input as request("POST", decision, token) with opa.runtime as {"config": {}}
	not authz.allow with input as request("POST", decision, "")
		with opa.runtime as {"config": {"modgate": {"gateway_token": ""}}}
}

test_a_short_configured_token_is_not_accepted if {
	short := "too-short"
	not authz.allow with input as request("POST", decision, short)
		with opa.runtime as {"config": {"modgate": {"gateway_token": short}}}
}
