package modgate

# Validation of the decision input, shape 1 (see docs/policy.md).
#
# Fail-closed design: a wrong-typed or missing field makes builtins and
# comparisons undefined, and a policy shaped like `allow if count(reasons) == 0`
# would then allow. So input_valid is a POSITIVE rule that must be proven:
# when it is not (false OR undefined), the decision denies. input_errors only
# explains a rejection; it is never needed to reject.
#
# The gateway checks module paths and versions with the go command's rules
# before it asks, so these checks are a second line: types, the structure
# of the request, and what protects the private routing (the first path
# element).

request_kinds := {"list", "info", "mod", "zip", "latest", "sumdb"}

# Kinds that name a module (everything but the checksum database).
module_kinds := {"list", "info", "mod", "zip", "latest"}

sumdb_kinds := {"supported", "lookup", "tile"}

default input_valid := false

# input_valid is the hot path: it runs on every decision, so it is a list of
# plain positive checks (no sprintf, no generic field tables, few rules) that
# stops at the first failure. It must accept exactly the inputs for which
# input_errors is empty; the tests check both on every input they use.
input_valid if {
	input.shape == 1 # also proves that input is an object
	_request_fits # also proves that request is an object
	is_string(object.get(input.request, "id", ""))
	type_name(object.get(input.request, "major", null)) in {"string", "null"}
	is_boolean(input.identity.authenticated) # also proves that identity is an object
	is_array(input.identity.groups)
	every group in input.identity.groups {
		is_string(group)
	}
	type_name(object.get(input.identity, "subject", null)) in {"string", "null"}
	is_string(object.get(input.identity, "method", ""))
}

# _request_fits: one clause per way a request may look. Each compares every
# field it needs against a value or passes it to a type-checking builtin, so a
# missing or wrong-typed field fails the clause. A module request carries no
# checksum database details (sumdb absent or null).

# A canonical version: .info, .mod, .zip, and @latest once resolved.
_request_fits if {
	input.request.kind in {"info", "mod", "zip", "latest"}
	valid_module_path(input.request.module)
	object.get(input.request, "sumdb", null) == null
	input.request.version_is_query == false
	is_boolean(input.request.resolved)
	request_version_canonical
}

# .list, and the first @latest ask before any upstream answered: no version.
_request_fits if {
	input.request.kind in {"list", "latest"}
	valid_module_path(input.request.module)
	object.get(input.request, "sumdb", null) == null
	input.request.version == null
	input.request.version_is_query == false
	input.request.resolved == false
}

# Only an .info request may carry a revision query; the gateway resolves it and
# asks again (resolved: true) about the canonical version.
_request_fits if {
	input.request.kind == "info"
	valid_module_path(input.request.module)
	object.get(input.request, "sumdb", null) == null
	input.request.version_is_query == true
	input.request.resolved == false
	version_query_ok(input.request.version)
}

_request_fits if {
	input.request.kind == "sumdb"
	input.request.sumdb.kind == "lookup" # also proves that sumdb is an object
	is_string(input.request.sumdb.database)
	valid_module_path(input.request.module)
	input.request.version_is_query == false
	is_boolean(input.request.resolved)
	request_version_canonical
}

_request_fits if {
	input.request.kind == "sumdb"
	input.request.sumdb.kind in {"supported", "tile"}
	is_string(input.request.sumdb.database)
	input.request.module == null
	input.request.version == null
	input.request.version_is_query == false
	input.request.resolved == false
}

# Derived once per decision; the blacklist reads it too. The body of
# canonical_version (versions.rego), inlined: this runs on every decision.
request_version_canonical if {
	is_string(input.request.version)
	startswith(input.request.version, "v")
	semver.is_valid(trim_suffix(trim_prefix(input.request.version, "v"), "+incompatible"))
}

# The request's module path in lower case, derived once per decision: the
# blacklist and the private patterns match module paths ignoring case. Module
# paths are ASCII (x/mod module.CheckPath, which the gateway applies); lower()
# also folds other letters, which can only make more paths match.
#
# It is derived here, not sent by the gateway: a field such as
# request.module_folded would have to be checked against lower(module) on
# every decision to be trusted (a wrong one could route private code public),
# and that check costs as much as deriving it.
request_module_folded := lower(input.request.module)

# valid_module_path: non-empty elements separated by single slashes, no white
# space or control characters, and a first element made only of lower-case
# ASCII letters, digits, dots and dashes, as the go command requires (an
# upper-case or otherwise odd host would dodge the private patterns and be
# routed public). One cached regular expression is the cheapest way to check
# all of it: string builtins cannot find control characters.
valid_module_path(path) if {
	is_string(path)
	regex.match(`^[a-z0-9.\-]+(/[^/\s\x00-\x1f\x7f]+)*$`, path)
}

# version_query_ok: a revision query such as "master" or a commit hash.
version_query_ok(query) if {
	is_string(query)
	count(query) <= 256
	regex.match(`^[^\s\x00-\x1f\x7f]+$`, query)
}

# --- error messages ------------------------------------------------------------
#
# Everything below explains a rejected input. It is evaluated only when a
# decision is denied (decision.rego reads input_errors only then), so it may
# be slow and thorough.
#
# Trap: `not f(input.x)` is UNDEFINED, not true, when input.x is missing (the
# reference is evaluated outside the negation). Negations here therefore read
# possibly-missing fields through object.get with a default, or negate a rule
# (`not check`), which is true whenever the rule is undefined.

# --- the input and its sections ----------------------------------------------

_input_is_object if is_object(input)

input_errors contains "malformed policy input: the input must be a JSON object" if not _input_is_object

_shape_ok if input.shape == 1

input_errors contains msg if {
	_input_is_object
	not _shape_ok
	msg := sprintf("malformed policy input: shape must be 1 (got %s)", [_got(["shape"])])
}

_sections := ["request", "identity"]

_sections_ok if {
	every section in _sections {
		is_object(input[section])
	}
}

input_errors contains msg if {
	_input_is_object
	some section in _sections
	not is_object(object.get(input, section, _absent))
	msg := sprintf("malformed policy input: %s must be an object (got %s)", [section, _got([section])])
}

# --- field types -----------------------------------------------------------

# Optional fields are type-checked when present; the policy does not read them.
_field_specs := [
	{"path": ["request", "id"], "types": {"string"}, "required": false},
	{"path": ["request", "module"], "types": {"string", "null"}, "required": true},
	{"path": ["request", "version"], "types": {"string", "null"}, "required": true},
	{"path": ["request", "version_is_query"], "types": {"boolean"}, "required": true},
	{"path": ["request", "resolved"], "types": {"boolean"}, "required": true},
	{"path": ["request", "major"], "types": {"string", "null"}, "required": false},
	{"path": ["request", "sumdb"], "types": {"object", "null"}, "required": false},
	{"path": ["identity", "authenticated"], "types": {"boolean"}, "required": true},
	{"path": ["identity", "subject"], "types": {"string", "null"}, "required": false},
	{"path": ["identity", "method"], "types": {"string"}, "required": false},
	{"path": ["identity", "details"], "types": {"object"}, "required": false},
]

_field_ok(spec) if type_name(object.get(input, spec.path, _absent)) in spec.types

_field_ok(spec) if {
	not spec.required
	object.get(input, spec.path, _absent) == _absent
}

_fields_ok if {
	every spec in _field_specs {
		_field_ok(spec)
	}
}

input_errors contains msg if {
	some spec in _field_specs
	is_object(object.get(input, [spec.path[0]], _absent))
	not _field_ok(spec)
	msg := sprintf(
		"malformed policy input: %s must be %s (got %s)",
		[concat(".", spec.path), concat(" or ", sort(spec.types)), _got(spec.path)],
	)
}

_kind_ok if input.request.kind in request_kinds

input_errors contains msg if {
	is_object(input.request)
	not _kind_ok
	msg := sprintf(
		"malformed policy input: request.kind must be one of %s (got %s)",
		[concat(", ", sort(request_kinds)), _got(["request", "kind"])],
	)
}

_groups_ok if {
	is_array(input.identity.groups)
	every group in input.identity.groups {
		is_string(group)
	}
}

input_errors contains msg if {
	is_object(input.identity)
	not _groups_ok
	msg := sprintf(
		"malformed policy input: identity.groups must be a list of strings (got %s)",
		[_got(["identity", "groups"])],
	)
}

# --- fields that must fit together -----------------------------------------

_types_ok if {
	_input_is_object
	_sections_ok
	_fields_ok
	_kind_ok
}

_sumdb := object.get(input.request, "sumdb", null)

# Human-readable explanations of why _request_fits failed.
_problems contains msg if {
	input.request.kind in module_kinds
	input.request.module == null
	msg := sprintf("request.module must be set for kind %s", [input.request.kind])
}

_problems contains msg if {
	is_string(input.request.module)
	not valid_module_path(input.request.module)
	msg := sprintf("request.module %s is not a valid module path", [_got(["request", "module"])])
}

_problems contains msg if {
	input.request.kind in {"info", "mod", "zip"}
	input.request.version == null
	msg := sprintf("request.version must be set for kind %s", [input.request.kind])
}

_problems contains "request.version must be null for kind list" if {
	input.request.kind == "list"
	input.request.version != null
}

_problems contains msg if {
	is_string(input.request.version)
	input.request.version_is_query == false
	not canonical_version(input.request.version)
	msg := sprintf(
		"request.version %s is not a canonical semantic version (a revision query needs version_is_query: true)",
		[_got(["request", "version"])],
	)
}

_problems contains msg if {
	input.request.version_is_query == true
	input.request.kind != "info"
	msg := sprintf("request.version_is_query may be true only for kind info (got kind %s)", [input.request.kind])
}

_problems contains "request.version_is_query and request.resolved cannot both be true" if {
	input.request.version_is_query == true
	input.request.resolved == true
}

_problems contains msg if {
	input.request.version_is_query == true
	is_string(input.request.version)
	not version_query_ok(input.request.version)
	msg := sprintf("request.version %s is not a valid revision query", [_got(["request", "version"])])
}

_problems contains "request.resolved is true but request.version is null" if {
	input.request.resolved == true
	input.request.version == null
}

_problems contains msg if {
	input.request.kind in module_kinds
	_sumdb != null
	msg := sprintf("request.sumdb must be null for kind %s", [input.request.kind])
}

_problems contains "request.sumdb must be an object for kind sumdb" if {
	input.request.kind == "sumdb"
	not is_object(_sumdb)
}

_problems contains msg if {
	input.request.kind == "sumdb"
	is_object(_sumdb)
	not object.get(_sumdb, "kind", _absent) in sumdb_kinds
	msg := sprintf(
		"request.sumdb.kind must be one of %s (got %s)",
		[concat(", ", sort(sumdb_kinds)), _got(["request", "sumdb", "kind"])],
	)
}

_problems contains msg if {
	input.request.kind == "sumdb"
	is_object(_sumdb)
	not is_string(object.get(_sumdb, "database", _absent))
	msg := sprintf("request.sumdb.database must be a string (got %s)", [_got(["request", "sumdb", "database"])])
}

_problems contains msg if {
	input.request.kind == "sumdb"
	_sumdb.kind == "lookup"
	some field in ["module", "version"]
	input.request[field] == null
	msg := sprintf("request.%s must be set for a sumdb lookup", [field])
}

_problems contains msg if {
	input.request.kind == "sumdb"
	_sumdb.kind in {"supported", "tile"}
	some field in ["module", "version"]
	input.request[field] != null
	msg := sprintf("request.%s must be null for a sumdb %s request", [field, _sumdb.kind])
}

input_errors contains concat("", ["malformed policy input: ", problem]) if {
	_types_ok
	some problem in _problems
}

# A catch-all, should the explanations above ever miss a rejected input.
input_errors contains "malformed policy input: request fields do not fit together" if {
	not input_valid
	_shape_ok
	_types_ok
	_groups_ok
	count(_problems) == 0
}

# --- describing what was received ------------------------------------------

# A set can never come from JSON, so it marks an absent field unambiguously.
_absent := {"absent"}

# _got describes the value at path for an error message.
_got(path) := _show(object.get(input, path, _absent)) if {
	is_object(input)
} else := "missing"

_show(value) := "missing" if {
	value == _absent
} else := sprintf("%q", [_clip(value, 60)]) if {
	is_string(value)
} else := sprintf("%v", [value]) if {
	not is_object(value)
	not is_array(value)
} else := type_name(value)

_clip(text, limit) := concat("", [substring(text, 0, limit), "..."]) if {
	count(text) > limit
} else := text
