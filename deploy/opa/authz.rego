# METADATA
# title: OPA beside the gateway (compose.yaml), token required
# description: |
#   OPA's own authorization policy for an OPA run as a server beside modgate
#   with --authentication=token --authorization=basic. Only the gateway's
#   token is accepted, and it may do only what modgate does: ask for
#   documents under data.modgate (decisions, and what /readyz reads) and
#   GET /health. Writes (PUT, PATCH, DELETE of policies or data) and every
#   other API are refused, whoever asks: policy changes go through the
#   mounted files (--watch) or bundles, never through the REST API.
#
#   The token is the content of the file OPA is started with as
#   --set-file modgate.gateway_token=FILE, the same file the gateway reads
#   (policy.opa_token_file); it is never committed (docs/deployment.md).
#   Without it, or shorter than 32 characters, nothing is allowed. OPA gives
#   this policy the request as input: method, path (split at "/"), headers,
#   and identity, the bearer token (server/authorizer/authorizer.go,
#   makeInput).
package system.authz

default allow := false

allow if {
	gateway_token
	read_only_request
}

gateway_token if {
	expected := trim_space(opa.runtime().config.modgate.gateway_token)
	count(expected) >= 32
	crypto.hmac.equal(input.identity, expected) # constant time
}

read_only_request if {
	input.method == "GET"
	input.path == ["health"]
}

read_only_request if {
	input.method == "POST"
	input.path[0] == "v1"
	input.path[1] == "data"
	input.path[2] == "modgate"
}
