"""Bounds every engine enforces, and the JSON encoding of what crosses into Rego.

Both engines encode the input and the data document here, so a value that
one engine would accept and the other would refuse cannot exist.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from execguard.sidecar.policy.errors import PolicyDataInvalid, PolicyInputInvalid
from execguard.sidecar.policy.input import PolicyInput

MIB = 1024 * 1024


@dataclass(frozen=True)
class EngineLimits:
    """Limits shared by every engine.

    `eval_timeout` bounds one evaluation (seconds); a policy that runs past it
    fails with `PolicyEvaluationFailed`, and the caller applies its
    failurePolicy. The byte limits are on the UTF-8 JSON / Rego source.
    """

    eval_timeout: float = 0.5
    load_timeout: float = 10.0
    max_data_bytes: int = 4 * MIB
    max_module_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        for name in ("eval_timeout", "load_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("max_data_bytes", "max_module_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


def encode_input(document: PolicyInput) -> str:
    """The input as strict JSON text; NaN/Infinity have no JSON form and are refused."""
    # pydantic's serializer is several times faster than dumping to Python and
    # then to JSON; it writes NaN/Infinity as bare constants, and a document
    # holding one (or a string that merely contains the word) takes the strict path.
    text = document.model_dump_json()
    if "NaN" not in text and "Infinity" not in text:
        return text
    try:
        return json.dumps(document.model_dump(mode="json"), allow_nan=False, ensure_ascii=False)
    except (ValueError, TypeError) as error:
        raise PolicyInputInvalid(f"policy input is not JSON-serialisable: {error}") from error


def input_value(document: PolicyInput) -> object:
    """The input as plain JSON-compatible Python values (validated like `encode_input`)."""
    value: object = document.model_dump(mode="json")
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError) as error:
        raise PolicyInputInvalid(f"policy input is not JSON-serialisable: {error}") from error
    return value


def encode_data(data: dict[str, object], limits: EngineLimits) -> str:
    """The data document as JSON text, refused if not serialisable or over the limit."""
    if not isinstance(data, dict):
        raise PolicyDataInvalid(
            f"the data document must be a JSON object, got {type(data).__name__}"
        )
    try:
        text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    except (ValueError, TypeError) as error:
        raise PolicyDataInvalid(f"the data document is not JSON-serialisable: {error}") from error
    size = len(text.encode("utf-8"))
    if size > limits.max_data_bytes:
        raise PolicyDataInvalid(
            f"the data document is {size} bytes, over the limit of {limits.max_data_bytes} bytes"
        )
    return text


def check_modules(modules: dict[str, str], limits: EngineLimits) -> None:
    """Refuse an empty module name or a module set over the byte limit."""
    total = 0
    for name, source in modules.items():
        if not name or not isinstance(source, str):
            raise PolicyDataInvalid(f"module {name!r}: a module needs a name and Rego source text")
        total += len(source.encode("utf-8"))
    if total > limits.max_module_bytes:
        raise PolicyDataInvalid(
            f"the policy modules are {total} bytes, over the limit of "
            f"{limits.max_module_bytes} bytes"
        )
