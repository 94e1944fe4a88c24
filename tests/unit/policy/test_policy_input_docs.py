"""The documented input examples are real: each parses into PolicyInput and
round-trips to the same JSON, and there is one per phase."""

from __future__ import annotations

import json
import re
from pathlib import Path

from execguard.sidecar.policy.input import INPUT_VERSION, PolicyInput

DOC = Path(__file__).resolve().parents[3] / "docs" / "policy-input.md"


def documented_examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [json.loads(block) for block in blocks]


def test_there_is_one_documented_example_per_phase() -> None:
    phases = [example["phase"] for example in documented_examples()]
    assert sorted(phases) == ["request", "response", "stream"]


def test_documented_examples_match_the_model_exactly() -> None:
    for example in documented_examples():
        parsed = PolicyInput.model_validate(example)
        assert parsed.model_dump(mode="json") == example
        assert parsed.version == INPUT_VERSION
