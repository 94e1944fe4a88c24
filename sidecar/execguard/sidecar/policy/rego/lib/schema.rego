# A JSON Schema subset in Rego, for rules that want to combine schema checks
# with other conditions (the sidecar's own JSON Schema validation is the
# complete implementation; this is for policy logic).
#
#   import data.execguard.lib.schema
#   deny contains msg if some msg in schema.violations(body, data.contract)
#
# Rego forbids recursion, so checking stops two levels down: the value
# itself, each declared property (or array item), and the required /
# additionalProperties of those. Keywords: type (incl. integer), enum,
# const, required, properties, additionalProperties: false, items,
# minItems, maxItems, minLength, maxLength, pattern, minimum, maximum.
#
# The embedded engine loads ../native/schema.rego in place of this module:
# the same rules, with the checks computed natively (native_schema.py).
# Change the three together; the conformance suite and a corpus test
# against OPA hold them to the same answers.
package execguard.lib.schema

import rego.v1

# valid(value, schema): true when violations(value, schema) is empty.
valid(value, schema) if count(violations(value, schema)) == 0

# violations(value, schema): messages "<path>: <problem>", path rooted at $.
violations(value, schema) := union({
	_level("$", value, schema),
	{m |
		is_object(value)
		some name in object.keys(object.get(schema, "properties", {}))
		name in object.keys(value)
		some m in _level(concat("", ["$.", name]), value[name], schema.properties[name])
	},
	{m |
		is_array(value)
		is_object(schema.items)
		some i
		item := value[i]
		some m in _level(concat("", ["$[", format_int(i, 10), "]"]), item, schema.items)
	},
})

# type_ok(value, type): the JSON Schema type matches (integer is a whole number).
type_ok(value, "integer") if {
	is_number(value)
	floor(value) == value
}

type_ok(value, t) if {
	t != "integer"
	type_name(value) == t
}

# Messages are built with concat, not sprintf: rego-cpp 1.x formats a string
# that reached a function as a literal argument with its quotes. Each check
# is `{message} if ... else := set()` rather than a filter-only comprehension
# (`{m | condition}`), which rego-cpp 1.x caches across calls with
# different arguments.
_num(n) := sprintf("%v", [n])

_properties(s) := object.get(s, "properties", {})

# Only the keywords the schema has are checked: every check below is empty
# when its keyword is absent, and skipping them is most of the cost of a
# small schema in the embedded engine. Keys that are not checks here
# (properties, items, description, ...) match no `_keyword` and add nothing.
_level(path, v, s) := union({msgs |
	some keyword in object.keys(s)
	msgs := _keyword(keyword, path, v, s)
})

_keyword("type", path, v, s) := _type(path, v, s) | _type_any(path, v, s)

_keyword("enum", path, v, s) := _enum(path, v, s)

_keyword("const", path, v, s) := _const(path, v, s)

_keyword("maxLength", path, v, s) := _max_length(path, v, s)

_keyword("minLength", path, v, s) := _min_length(path, v, s)

_keyword("pattern", path, v, s) := _pattern(path, v, s)

_keyword("minimum", path, v, s) := _minimum(path, v, s)

_keyword("maximum", path, v, s) := _maximum(path, v, s)

_keyword("required", path, v, s) := _required(path, v, s)

_keyword("additionalProperties", path, v, s) := _additional(path, v, s)

_keyword("maxItems", path, v, s) := _max_items(path, v, s)

_keyword("minItems", path, v, s) := _min_items(path, v, s)

_type(path, v, s) := {concat("", [path, ": expected ", s.type, ", got ", type_name(v)])} if {
	is_string(s.type)
	not type_ok(v, s.type)
} else := set()

_type_any(path, v, s) := {concat("", [path, ": expected one of ", concat("|", s.type), ", got ", type_name(v)])} if {
	is_array(s.type)
	count([t | some t in s.type; type_ok(v, t)]) == 0
} else := set()

_enum(path, v, s) := {concat("", [path, ": value is not one of the allowed values"])} if {
	is_array(s.enum)
	not v in s.enum
} else := set()

_const(path, v, s) := {concat("", [path, ": value is not the required constant"])} if {
	"const" in object.keys(s)
	v != s.const
} else := set()

_max_length(path, v, s) := {concat("", [path, ": longer than ", _num(s.maxLength), " characters"])} if {
	is_string(v)
	count(v) > s.maxLength
} else := set()

_min_length(path, v, s) := {concat("", [path, ": shorter than ", _num(s.minLength), " characters"])} if {
	is_string(v)
	count(v) < s.minLength
} else := set()

_pattern(path, v, s) := {concat("", [path, ": does not match pattern ", s.pattern])} if {
	is_string(v)
	is_string(s.pattern)
	not regex.match(s.pattern, v)
} else := set()

_minimum(path, v, s) := {concat("", [path, ": below the minimum ", _num(s.minimum)])} if {
	is_number(v)
	v < s.minimum
} else := set()

_maximum(path, v, s) := {concat("", [path, ": above the maximum ", _num(s.maximum)])} if {
	is_number(v)
	v > s.maximum
} else := set()

# One message per object listing the keys: a comprehension whose head uses
# `path` comes back empty from rego-cpp 1.x when `path` started as a literal.
_required(path, v, s) := {concat("", [path, ": missing required properties: ", concat(", ", sort(missing))])} if {
	missing := _missing_keys(v, s)
	count(missing) > 0
} else := set()

_missing_keys(v, s) := {k | some k in s.required; not k in object.keys(v)} if {
	is_object(v)
	is_array(s.required)
} else := set()

_additional(path, v, s) := {concat("", [path, ": properties not allowed: ", concat(", ", sort(extra))])} if {
	extra := _extra_keys(v, s)
	count(extra) > 0
} else := set()

_extra_keys(v, s) := object.keys(v) - object.keys(_properties(s)) if {
	is_object(v)
	s.additionalProperties == false
} else := set()

_max_items(path, v, s) := {concat("", [path, ": more than ", _num(s.maxItems), " items"])} if {
	is_array(v)
	count(v) > s.maxItems
} else := set()

_min_items(path, v, s) := {concat("", [path, ": fewer than ", _num(s.minItems), " items"])} if {
	is_array(v)
	count(v) < s.minItems
} else := set()
