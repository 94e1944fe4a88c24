"""The embedded engine's native PII detectors answer as the Rego library does on OPA.

The embedded engine swaps `data.execguard.lib.pii` for a variant whose
detectors are Python (`native_pii`); OPA runs the Rego original. A seeded
corpus of texts built from card numbers, IBANs, addresses, credentials and
awkward glue (Unicode letters and digits, underscores, separators) goes
through both, and every detector must agree on every text.
"""

from __future__ import annotations

import random
import re

import pytest
from native_corpus import differences_from_opa

from execguard.devkit.opa_process import OpaProcess
from execguard.sidecar.policy import native_pii
from execguard.sidecar.policy.library import library_modules, native_library_modules

PROBE = """package execguard.request
import rego.v1
import data.execguard.lib.pii
warn contains json.marshal([i, {
	"emails": sort(pii.emails(t)),
	"cards": sort(pii.card_numbers(t)),
	"ibans": sort(pii.ibans(t)),
	"keys": sort(pii.api_keys(t)),
	"kinds": sort(pii.kinds(t)),
	"luhn": sort({d | some d in regex.find_n(`[0-9]+`, t, -1); pii.luhn_valid(d)}),
	"iban_valid": sort({w | some w in regex.find_n(`[A-Za-z0-9]+`, t, -1); pii.iban_valid(w)}),
}]) if some i, t in input.params.texts
"""

FRAGMENTS = [
    "4111 1111 1111 1111",
    "4111111111111111",
    "4111 1111 1111 1112",
    "5500-0000-0000-0004",
    "378282246310005",
    "6011 0009 9013 9424",
    "4111  1111 1111 1111",
    "12345678901234567890123",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "DE89370400440532013001",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "gb82west12345698765432",
    "jane@example.com",
    "a.b+c@sub.example.co.uk",
    "x@y",
    "bad@domain.",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "a1B2" * 9,
    "sk-proj-" + "Ab3_" * 6,
    "sk-" + "x" * 19,
    "xoxb-123456789012",
    "AIza" + "Sy" + "A" * 33,
    "-----BEGIN RSA PRIVATE KEY-----",
    "order 2024-11-26",
    "call +44 20 7946 0958",
]
GLUE = [" ", "", ",", "\n", "é", "_", "x", "1", "-", "日本", "٣", "(", ")", ": "]


def corpus(size: int, seed: int = 20261126) -> list[str]:
    rng = random.Random(seed)
    texts = list(FRAGMENTS)
    while len(texts) < size:
        parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 4))]
        glue = [rng.choice(GLUE) for _ in range(len(parts) + 1)]
        texts.append("".join(g + p for g, p in zip(glue, parts, strict=False)) + glue[-1])
    return texts


@pytest.mark.opa
async def test_native_detectors_agree_with_the_rego_library_on_opa(
    opa_server: OpaProcess,
) -> None:
    texts = corpus(400)
    opa, differences = await differences_from_opa(
        opa_server, PROBE, {"texts": texts}, len(texts), lambda i: repr(texts[i])
    )
    assert not differences, "\n".join(differences[:10])
    # The corpus exercises every detector, or agreement would prove little.
    found = [value for value in opa.values() if isinstance(value, dict)]
    assert all(any(value[key] for value in found) for key in found[0])


def _rego_constant(source: str, name: str) -> str:
    match = re.search(rf"^{name} := `([^`]*)`$", source, re.MULTILINE)
    assert match, f"{name} not found"
    return match.group(1)


@pytest.mark.parametrize(
    ("rego_name", "python_pattern"),
    [
        ("email_pattern", native_pii.EMAIL_PATTERN),
        ("card_pattern", native_pii.CARD_PATTERN),
        ("iban_pattern", native_pii.IBAN_PATTERN),
        ("api_key_pattern", native_pii.API_KEY_PATTERN),
    ],
)
def test_native_patterns_are_the_ones_the_library_exports(
    rego_name: str, python_pattern: str
) -> None:
    original = library_modules()["execguard/lib/pii.rego"]
    native = native_library_modules()["execguard/lib/pii.rego"]
    assert _rego_constant(original, rego_name) == python_pattern
    assert _rego_constant(native, rego_name) == python_pattern


def _public_rules(source: str) -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9_]*)\s*(?:\(|:=|if\b)", source, re.MULTILINE))


def test_the_native_module_has_every_public_rule_of_the_original() -> None:
    original = _public_rules(library_modules()["execguard/lib/pii.rego"])
    native = _public_rules(native_library_modules()["execguard/lib/pii.rego"])
    assert original == native
    assert {"emails", "card_numbers", "ibans", "api_keys", "luhn_valid"} <= native
