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
		some m in _level(sprintf("$.%s", [name]), value[name], schema.properties[name])
	},
	{m |
		is_array(value)
		is_object(schema.items)
		some i
		item := value[i]
		some m in _level(sprintf("$[%d]", [i]), item, schema.items)
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

_level(path, v, s) := union({
	_type(path, v, s),
	_enum(path, v, s),
	_strings(path, v, s),
	_numbers(path, v, s),
	_object(path, v, s),
	_array(path, v, s),
})

_type(path, v, s) := {sprintf("%s: expected %s, got %s", [path, s.type, type_name(v)]) | is_string(s.type)
	not type_ok(v, s.type)
} | {sprintf("%s: expected one of %s, got %s", [path, concat("|", s.type), type_name(v)]) | is_array(s.type)
	count({t | some t in s.type; type_ok(v, t)}) == 0
}

_enum(path, v, s) := {sprintf("%s: %s is not one of the allowed values", [path, json.marshal(v)]) | is_array(s.enum)
	not v in s.enum
} | {sprintf("%s: must equal %s", [path, json.marshal(s.const)]) | "const" in object.keys(s)
	v != s.const
}

_strings(path, v, s) := {sprintf("%s: longer than %d characters", [path, s.maxLength]) | is_string(v)
	count(v) > s.maxLength
} | {sprintf("%s: shorter than %d characters", [path, s.minLength]) | is_string(v)
	count(v) < s.minLength
} | {sprintf("%s: does not match pattern %s", [path, s.pattern]) | is_string(v)
	is_string(s.pattern)
	not regex.match(s.pattern, v)
}

_numbers(path, v, s) := {sprintf("%s: below the minimum %v", [path, s.minimum]) | is_number(v)
	v < s.minimum
} | {sprintf("%s: above the maximum %v", [path, s.maximum]) | is_number(v)
	v > s.maximum
}

_object(path, v, s) := {sprintf("%s: missing required property %s", [path, k]) | is_object(v)
	some k in object.get(s, "required", [])
	not k in object.keys(v)
} | {sprintf("%s: property %s is not allowed", [path, k]) | is_object(v)
	s.additionalProperties == false
	some k in object.keys(v)
	not k in object.keys(object.get(s, "properties", {}))
}

_array(path, v, s) := {sprintf("%s: more than %d items", [path, s.maxItems]) | is_array(v)
	count(v) > s.maxItems
} | {sprintf("%s: fewer than %d items", [path, s.minItems]) | is_array(v)
	count(v) < s.minItems
}
