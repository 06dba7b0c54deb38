package modgate

# Validation of the decision input, shape 1 (see docs/policy.md).
#
# Fail-closed design: a wrong-typed or missing field makes builtins and
# comparisons undefined, and a policy shaped like `allow if count(reasons) == 0`
# would then allow. So every check here is a POSITIVE rule that must be proven:
# when it is not (false OR undefined), `not check` holds and an error is
# reported. input_valid also requires every check directly, so even a gap in
# the error messages can never turn into an allow.
#
# Trap: `not f(input.x)` is UNDEFINED, not true, when input.x is missing (the
# reference is evaluated outside the negation). Negations here therefore read
# possibly-missing fields through object.get with a default, or negate a rule
# (`not check`), which is true whenever the rule is undefined.

request_kinds := {"list", "info", "mod", "zip", "latest", "sumdb"}

# Kinds that name a module (everything but the checksum database).
module_kinds := {"list", "info", "mod", "zip", "latest"}

sumdb_kinds := {"supported", "lookup", "tile"}

default input_valid := false

input_valid if {
	_input_is_object
	_shape_ok
	_sections_ok
	_fields_ok
	_kind_ok
	_groups_ok
	_request_consistent
	count(input_errors) == 0
}

# valid_module_path: non-empty elements separated by single slashes, no white
# space or control characters, and a lower-case first element (the go command
# rejects upper case there; an upper-case host would otherwise dodge the
# private patterns and be routed public).
valid_module_path(path) if {
	is_string(path)
	regex.match(`^[^/\s\x00-\x1f\x7f]+(/[^/\s\x00-\x1f\x7f]+)*$`, path)
	first := split(path, "/")[0]
	first == lower(first)
}

# version_query_ok: a revision query such as "master" or a commit hash.
version_query_ok(query) if {
	is_string(query)
	regex.match(`^[^\s\x00-\x1f\x7f]+$`, query)
	count(query) <= 256
}

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

_request_consistent if {
	input.request.kind in module_kinds
	_sumdb == null
	valid_module_path(input.request.module)
	_query_flags_ok
	_version_fits_kind
}

_request_consistent if {
	input.request.kind == "sumdb"
	_sumdb_fits
}

_query_flags_ok if input.request.version_is_query == false

# Only an .info request may carry a revision query; the gateway resolves it and
# asks again (resolved: true) about the canonical version.
_query_flags_ok if {
	input.request.version_is_query == true
	input.request.kind == "info"
	input.request.resolved == false
}

_version_fits_kind if {
	input.request.kind == "list"
	input.request.version == null
	input.request.resolved == false
}

# The first @latest request, before any upstream answered.
_version_fits_kind if {
	input.request.kind == "latest"
	input.request.version == null
	input.request.resolved == false
}

_version_fits_kind if {
	input.request.kind in {"info", "mod", "zip", "latest"}
	input.request.version_is_query == false
	canonical_version(input.request.version)
}

_version_fits_kind if {
	input.request.kind == "info"
	input.request.version_is_query == true
	version_query_ok(input.request.version)
}

_sumdb_fits if {
	is_object(_sumdb)
	is_string(_sumdb.database)
	_sumdb.kind == "lookup"
	valid_module_path(input.request.module)
	canonical_version(input.request.version)
	input.request.version_is_query == false
}

_sumdb_fits if {
	is_object(_sumdb)
	is_string(_sumdb.database)
	_sumdb.kind in {"supported", "tile"}
	input.request.module == null
	input.request.version == null
	input.request.version_is_query == false
}

# Human-readable explanations of why _request_consistent failed.
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

input_errors contains "malformed policy input: request fields do not fit together" if {
	_types_ok
	not _request_consistent
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
