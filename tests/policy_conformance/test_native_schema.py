"""The embedded engine's native JSON Schema checks answer as the Rego library does on OPA.

The embedded engine swaps `data.execguard.lib.schema` for a variant whose
checks are Python (`native_schema`); OPA runs the Rego original. A seeded
corpus of (value, schema) pairs, drawn from every keyword the library knows
and from values of every JSON type (including `true` beside `1`, `1` beside
`1.0`), goes through both; every message must agree.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from native_corpus import differences_from_opa

from execguard.devkit.opa_process import OpaProcess
from execguard.sidecar.policy.library import library_modules, native_library_modules
from execguard.sidecar.policy.rego_values import format_number

PROBE = """package execguard.request
import rego.v1
import data.execguard.lib.schema
warn contains json.marshal([i, [sort(schema.violations(c[0], c[1])), valid(c[0], c[1])]]) if {
	some i, c in input.params.cases
}
valid(v, s) := true if schema.valid(v, s) else := false
"""

NAMES = ["a", "b", "sentiment", "confidence", "é"]
TYPES = ["null", "boolean", "number", "integer", "string", "array", "object"]
PATTERNS = ["^[a-z]+$", "[0-9]", "^p", "é"]
NUMBERS = [0, 1, -3, 2.5, 0.5, 1e-7, 1.0, 100, 123456.75]
# Limits that are not numbers: Rego compares them across types, and so must the native checks.
ODD_LIMITS = [None, True, False, "3"]


def scalar(rng: random.Random) -> object:
    kind = rng.randrange(6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice(NUMBERS)
    return rng.choice(["", "a", "abc", "héllo", "positive", "x" * 9, "42", "p0"])


def value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(4 if depth < 2 else 1)
    if kind == 0 or kind == 1:
        return scalar(rng)
    if kind == 2:
        return [value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {name: value(rng, depth + 1) for name in rng.sample(NAMES, rng.randrange(4))}


def level_schema(rng: random.Random) -> dict[str, object]:
    schema: dict[str, object] = {}
    if rng.random() < 0.5:
        schema["type"] = (
            rng.choice(TYPES) if rng.random() < 0.7 else rng.sample(TYPES, rng.randrange(1, 3))
        )
    if rng.random() < 0.2:
        schema["enum"] = [scalar(rng) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.15:
        schema["const"] = value(rng, 1)
    for keyword in ("maxLength", "minLength", "maxItems", "minItems"):
        if rng.random() < 0.15:
            schema[keyword] = rng.randrange(5) if rng.random() < 0.85 else rng.choice(ODD_LIMITS)
    for keyword in ("minimum", "maximum"):
        if rng.random() < 0.2:
            schema[keyword] = rng.choice(NUMBERS) if rng.random() < 0.85 else rng.choice(ODD_LIMITS)
    if rng.random() < 0.25:
        schema["required"] = rng.sample(NAMES, rng.randrange(1, 3))
    if rng.random() < 0.2:
        schema["additionalProperties"] = rng.choice([False, True])
    if rng.random() < 0.2:
        schema["pattern"] = rng.choice(PATTERNS)
    if rng.random() < 0.1:
        schema["description"] = "ignored"
    return schema


def schema_of(rng: random.Random) -> dict[str, object]:
    schema = level_schema(rng)
    if rng.random() < 0.5:
        schema["properties"] = {
            name: level_schema(rng) for name in rng.sample(NAMES, rng.randrange(1, 4))
        }
    if rng.random() < 0.3:
        schema["items"] = level_schema(rng)
    return schema


def corpus(size: int, seed: int = 26112026) -> list[list[object]]:
    rng = random.Random(seed)
    cases: list[list[object]] = []
    while len(cases) < size:
        schema = schema_of(rng)
        # Objects and arrays most of the time: that is where the levels below the root are.
        shape = rng.random()
        if shape < 0.45:
            subject: object = {name: value(rng, 1) for name in rng.sample(NAMES, rng.randrange(5))}
        elif shape < 0.7:
            subject = [value(rng, 1) for _ in range(rng.randrange(5))]
        else:
            subject = value(rng)
        cases.append([subject, schema])
    return cases


@pytest.mark.opa
async def test_native_schema_checks_agree_with_the_rego_library_on_opa(
    opa_server: OpaProcess,
) -> None:
    cases = corpus(600)
    opa, differences = await differences_from_opa(
        opa_server,
        PROBE,
        {"cases": cases},
        len(cases),
        lambda i: f"value {json.dumps(cases[i][0])}\n  schema {json.dumps(cases[i][1])}",
    )
    assert not differences, "\n".join(differences[:10])
    # Every kind of message occurs, or agreement would prove little.
    messages = [m for value in opa.values() if isinstance(value, list) for m in value[0]]
    kinds = {re.sub(r"^\$[^:]*: ", "", m).split(" ")[0] for m in messages}
    assert {"expected", "value", "longer", "shorter", "below", "above", "missing"} <= kinds
    assert {"properties", "more", "fewer", "does"} <= kinds
    assert any(" null" in m or " true" in m for m in messages)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1, "1"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (123456.75, "123456.75"),
        (1234567.5, "1.2345675e+06"),
        (-0.0, "-0"),
        (-2.25, "-2.25"),
        (1e21, "1e+21"),
    ],
)
def test_numbers_in_messages_are_written_as_opa_writes_them(number: float, text: str) -> None:
    assert format_number(number) == text


def _public_rules(source: str) -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9_]*)\s*(?:\(|:=|if\b)", source, re.MULTILINE))


def test_the_native_module_has_every_public_rule_of_the_original() -> None:
    original = _public_rules(library_modules()["execguard/lib/schema.rego"])
    native = _public_rules(native_library_modules()["execguard/lib/schema.rego"])
    assert original == native == {"valid", "violations", "type_ok"}
