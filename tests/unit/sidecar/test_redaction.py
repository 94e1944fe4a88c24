"""Redaction, whole and streamed: a match split across chunks is still replaced."""

from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from execguard.sidecar.config import RedactionRule
from execguard.sidecar.validation.redaction import Redactor

EMAIL = RedactionRule(
    name="email", pattern=r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", max_match_chars=64
)
CARD = RedactionRule(name="card", pattern=r"\b(?:\d[ -]?){13,16}\b", max_match_chars=32)
REDACTOR = Redactor([EMAIL, CARD])


def test_emails_and_cards_are_replaced_and_counted() -> None:
    text, hits = REDACTOR.redact("mail jane.doe@example.com, card 4111 1111 1111 1111.")
    assert text == "mail [REDACTED], card [REDACTED]."
    assert hits == {"email": 1, "card": 1}


def test_a_redactor_without_rules_changes_nothing() -> None:
    stream = Redactor([]).stream()
    assert stream.feed("jane@example.com") == "jane@example.com"
    assert stream.flush() == ""


def test_an_email_split_across_many_chunks_never_leaks() -> None:
    stream = REDACTOR.stream()
    pieces = ["Contact me at ja", "ne.d", "oe@exam", "ple.c", "om for details."]
    out = "".join(stream.feed(piece) for piece in pieces) + stream.flush()
    assert out == "Contact me at [REDACTED] for details."


def test_text_far_from_any_match_is_released_before_the_stream_ends() -> None:
    stream = REDACTOR.stream()
    released = stream.feed("word " * 40)
    assert released.startswith("word word")


def test_policy_patterns_add_to_the_configured_rules() -> None:
    text, _ = REDACTOR.with_patterns((r"hunter2", "([")).redact("pw hunter2 a@b.io")
    assert text == "pw [REDACTED] [REDACTED]"


def test_policy_patterns_read_word_boundaries_as_rego_does() -> None:
    # Rego (Go RE2) has an ASCII \b, so the PII detectors find a card number
    # glued to "é"; redacting with a Unicode \b would let it through.
    card_pattern = r"\b[0-9](?:[ -]?[0-9]){12,18}\b"
    text, _ = Redactor([]).with_patterns((card_pattern,)).redact("é4111111111111111")
    assert text == "é[REDACTED]"


words = st.sampled_from(
    ["alpha", "beta", " ", ". ", "jane.doe@example.com", "4111 1111 1111 1111", "x@y.org", "42"]
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(words, max_size=30), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_streamed_redaction_equals_whole_text_redaction_for_any_chunking(
    parts: list[str], cuts: list[int]
) -> None:
    text = "".join(parts)
    positions = sorted({c for c in cuts if c < len(text)} | {0, len(text)})
    pieces = [text[a:b] for a, b in itertools.pairwise(positions)]
    stream = REDACTOR.stream()
    streamed = "".join(stream.feed(piece) for piece in pieces) + stream.flush()
    assert streamed == REDACTOR.redact(text)[0]
