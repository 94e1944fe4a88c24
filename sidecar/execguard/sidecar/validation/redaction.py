"""Replacing matched spans (emails, card numbers, ...) in text that reaches the client.

`StreamRedactor` works across chunk boundaries: it holds back the last
`max_match_chars` characters of text, because a match may still be growing there,
and releases text only once no match can reach into it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from execguard.sidecar.config import RedactionRule

_POLICY_PATTERN_HOLDBACK = 256
# Already-sent text kept so that anchors and lookbehinds see what preceded a cut.
_CONTEXT_CHARS = 64


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    replacement: str


class Redactor:
    """The configured rules, compiled once per config."""

    def __init__(self, rules: list[RedactionRule]) -> None:
        self._rules = tuple(
            _Rule(rule.name, re.compile(rule.pattern), rule.replacement) for rule in rules
        )
        self.holdback = max((rule.max_match_chars for rule in rules), default=0)

    def with_patterns(self, patterns: tuple[str, ...]) -> Redactor:
        """This redactor plus patterns a policy decision asked for; invalid ones are skipped."""
        if not patterns:
            return self
        extra: list[_Rule] = []
        for pattern in patterns:
            try:
                # A policy's pattern is Rego's (Go's RE2): \b, \d, \w and \s are ASCII
                # there, so they are here, and text a detector found is redacted.
                extra.append(_Rule("policy", re.compile(pattern, re.ASCII), "[REDACTED]"))
            except re.error:
                continue  # a rule's bad pattern must not break the response; it is logged upstream
        combined = Redactor([])
        combined._rules = (*self._rules, *extra)
        combined.holdback = max(self.holdback, _POLICY_PATTERN_HOLDBACK)
        return combined

    @property
    def active(self) -> bool:
        """Whether any rule is configured."""
        return bool(self._rules)

    def _matches(self, text: str, begin: int) -> list[tuple[int, int, _Rule]]:
        spans: list[tuple[int, int, _Rule]] = []
        for rule in self._rules:
            spans.extend(
                (m.start(), m.end(), rule)
                for m in rule.pattern.finditer(text, begin)
                if m.end() > m.start()
            )
        spans.sort(key=lambda span: (span[0], -span[1]))
        merged: list[tuple[int, int, _Rule]] = []
        for start, end, rule in spans:
            if merged and start < merged[-1][1]:
                continue  # overlapping matches: the earliest (longest) one wins
            merged.append((start, end, rule))
        return merged

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """The text with every match replaced, and how many matches each rule had."""
        output, hits, _ = self._apply(text, len(text))
        return output, hits

    def _apply(self, text: str, limit: int, begin: int = 0) -> tuple[str, Counter[str], int]:
        """Redact `text[begin:cut]`, where cut <= limit never splits a match; returns cut too.

        `text[:begin]` is context already sent: searching from `start` inside the whole
        text keeps anchors such as `\\b` seeing the character before it.
        """
        hits: Counter[str] = Counter()
        parts: list[str] = []
        position = begin
        cut = limit
        for start, end, rule in self._matches(text, begin):
            if end > limit:
                cut = min(cut, start)
                break
            parts.append(text[position:start])
            parts.append(rule.replacement)
            hits[rule.name] += 1
            position = end
        parts.append(text[position:cut] if cut >= position else "")
        return "".join(parts), hits, max(cut, position)

    def stream(self) -> StreamRedactor:
        """A redactor for one streamed response."""
        return StreamRedactor(self)


class StreamRedactor:
    """Redacts a text stream piece by piece without missing matches split across pieces."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._context = ""
        self._pending = ""
        self.hits: Counter[str] = Counter()

    def feed(self, piece: str) -> str:
        """Add a piece; returns the redacted text that is now safe to send (may be empty)."""
        if not self._redactor.active:
            return piece
        context = len(self._context)
        buffer = self._context + self._pending + piece
        safe = max(context, len(buffer) - self._redactor.holdback)
        output, hits, cut = self._redactor._apply(buffer, safe, context)
        self.hits.update(hits)
        self._context = buffer[max(0, cut - _CONTEXT_CHARS) : cut]
        self._pending = buffer[cut:]
        return output

    def flush(self) -> str:
        """The rest of the text, redacted, at the end of the stream."""
        buffer = self._context + self._pending
        output, hits, _ = self._redactor._apply(buffer, len(buffer), len(self._context))
        self.hits.update(hits)
        self._context = self._pending = ""
        return output
