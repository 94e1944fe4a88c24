# data.execguard.lib.schema for the embedded engine: the rules of
# ../lib/schema.rego (read that file for the keywords and messages) with the
# checks computed by the worker's native functions
# (execguard/sidecar/policy/native_schema.py). `pattern` is matched here, with
# the engine's own regex.match, because a pattern is a Rego regular
# expression. Loaded under the library's module name in place of
# ../lib/schema.rego; the rego-cpp fallback and OPA load the Rego original.
package execguard.lib.schema

import rego.v1

valid(value, schema) if count(violations(value, schema)) == 0

violations(value, schema) := execguard.native.schema_violations(value, schema) | {m |
	some check in execguard.native.schema_pattern_checks(value, schema)
	not regex.match(check[2], check[1])
	m := concat("", [check[0], ": does not match pattern ", check[2]])
}

type_ok(value, "integer") if {
	is_number(value)
	floor(value) == value
}

type_ok(value, t) if {
	t != "integer"
	type_name(value) == t
}
