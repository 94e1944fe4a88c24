"""The input document as engines receive it: strict JSON, or a clear refusal."""

from __future__ import annotations

import json

import pytest

from execguard.sidecar.policy.errors import PolicyInputInvalid
from execguard.sidecar.policy.input import PolicyInput, RequestView
from execguard.sidecar.policy.limits import encode_input


def document(body: object, params: dict[str, object] | None = None) -> PolicyInput:
    return PolicyInput.model_validate(
        {
            "phase": "request",
            "request": RequestView(method="POST", path="/v1/chat/completions", body=body),
            "params": params or {},
        }
    )


def test_the_encoded_input_is_the_document_as_json() -> None:
    doc = document({"model": "m", "messages": [{"role": "user", "content": "héllo ✓"}]})
    assert json.loads(encode_input(doc)) == doc.model_dump(mode="json")
    assert "héllo ✓" in encode_input(doc)  # not \\u-escaped: the engines read UTF-8


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"]
)
def test_a_number_json_cannot_hold_is_refused_wherever_it_is(value: float) -> None:
    with pytest.raises(PolicyInputInvalid, match="not JSON-serialisable"):
        encode_input(document({"a": [1, {"b": value}]}))
    with pytest.raises(PolicyInputInvalid, match="not JSON-serialisable"):
        encode_input(document(None, params={"limit": value}))


def test_text_that_merely_mentions_nan_or_infinity_is_encoded() -> None:
    doc = document({"prompt": "NaN and -Infinity are not JSON numbers"})
    assert json.loads(encode_input(doc))["request"]["body"]["prompt"] == (
        "NaN and -Infinity are not JSON numbers"
    )
