"""The PII detectors of `data.execguard.lib.pii`, in Python, for the embedded engine.

In regorus each Rego step costs microseconds, and the detectors (a regex
scan, then a Luhn or ISO 13616 check per candidate) are most of what a PII
policy costs. The worker therefore registers these functions as regorus
extensions (`execguard.native.*`) and loads `rego/native/pii.rego`, which has
the public API of `rego/lib/pii.rego` with these calls for bodies. OPA, and
the rego-cpp fallback, run the Rego library itself.

The two must give the same answers: the conformance suite runs the PII cases
on both engines, a property test compares these functions with OPA on
generated text, and a unit test checks that the patterns here are the ones
the Rego library exports. Patterns are compiled ASCII-only, as Go's regexp
(OPA) reads them: `\\b` and character classes know no Unicode letters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

EMAIL_PATTERN: Final = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
CARD_PATTERN: Final = r"\b[0-9](?:[ -]?[0-9]){12,18}\b"
IBAN_PATTERN: Final = r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b"
API_KEY_PATTERN: Final = (
    r"(?:\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)|(?:\bgh[pousr]_[A-Za-z0-9]{36,}\b)"
    r"|(?:\bAIza[0-9A-Za-z_-]{35}\b)|(?:\bsk-(?:proj-)?[A-Za-z0-9_-]{20,})"
    r"|(?:-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----)|(?:\bxox[abprs]-[A-Za-z0-9-]{10,})"
)

_EMAIL: Final = re.compile(EMAIL_PATTERN, re.ASCII)
_CARD: Final = re.compile(CARD_PATTERN, re.ASCII)
_IBAN: Final = re.compile(IBAN_PATTERN, re.ASCII)
_API_KEY: Final = re.compile(API_KEY_PATTERN, re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)


def _text(value: object, function: str) -> str:
    # Rego's regex built-ins refuse a non-string operand; so do these.
    if not isinstance(value, str):
        raise TypeError(f"{function}: operand must be a string, got {type(value).__name__}")
    return value


def luhn_valid(digits: object) -> bool:
    """13 to 19 ASCII digits whose Luhn checksum is 0 (mod 10)."""
    text = _text(digits, "luhn_valid")
    if not 13 <= len(text) <= 19 or not _DIGITS.fullmatch(text):
        return False
    total = 0
    for position, char in enumerate(reversed(text)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: object) -> bool:
    """ISO 13616: 15 to 34 characters, letters as 10..35, the number mod 97 is 1."""
    text = _text(iban, "iban_valid")
    if not 15 <= len(text) <= 34:
        return False
    rearranged = text[4:] + text[:4]
    numeric = "".join(str(ord(char) - 55) if "A" <= char <= "Z" else char for char in rearranged)
    if not _DIGITS.fullmatch(numeric):
        return False
    return int(numeric) % 97 == 1


def emails(text: object) -> set[str]:
    """The e-mail addresses in the text."""
    return {match.group() for match in _EMAIL.finditer(_text(text, "emails"))}


def card_numbers(text: object) -> set[str]:
    """The Luhn-valid payment card numbers in the text, digits only."""
    found = set()
    for match in _CARD.finditer(_text(text, "card_numbers")):
        digits = match.group().replace(" ", "").replace("-", "")
        if luhn_valid(digits):
            found.add(digits)
    return found


def ibans(text: object) -> set[str]:
    """The IBANs in the text that pass the mod-97 check, without spaces."""
    found = set()
    for match in _IBAN.finditer(_text(text, "ibans")):
        iban = match.group().replace(" ", "")
        if iban_valid(iban):
            found.add(iban)
    return found


def api_keys(text: object) -> set[str]:
    """The substrings of the text shaped like a provider credential."""
    return {match.group() for match in _API_KEY.finditer(_text(text, "api_keys"))}


# Rego name -> (number of arguments, implementation), as regorus registers extensions.
EXTENSIONS: Final[dict[str, tuple[int, Callable[..., object]]]] = {
    "execguard.native.pii_emails": (1, emails),
    "execguard.native.pii_card_numbers": (1, card_numbers),
    "execguard.native.pii_ibans": (1, ibans),
    "execguard.native.pii_api_keys": (1, api_keys),
    "execguard.native.pii_luhn_valid": (1, luhn_valid),
    "execguard.native.pii_iban_valid": (1, iban_valid),
}
