"""Allow-lists and caps on an OpenAI-style request: model, tools, `max_tokens`."""

from __future__ import annotations

from pydantic import JsonValue

from execguard.sidecar.config import BoundariesConfig, TokenCapMode
from execguard.sidecar.errors import PolicyDenied, RequestRejected

_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


def requested_tools(body: dict[str, JsonValue]) -> list[str]:
    """Names of the tools (function calling) a request declares, in order."""
    names: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                function = tool.get("function")
                name = function.get("name") if isinstance(function, dict) else tool.get("name")
                names.append(name if isinstance(name, str) else "<unnamed>")
    functions = body.get("functions")  # the legacy spelling
    if isinstance(functions, list):
        for function in functions:
            if isinstance(function, dict):
                name = function.get("name")
                names.append(name if isinstance(name, str) else "<unnamed>")
    return names


def enforce_model_access(
    body: dict[str, JsonValue], boundaries: BoundariesConfig
) -> dict[str, JsonValue]:
    """Check model and tools against the allow-lists and apply the token cap.

    Returns the body to forward: the same object, or a copy with `max_tokens`
    clamped or filled in when the cap says so.
    """
    allowed_models = boundaries.allowed_models
    if allowed_models is not None:
        model = body.get("model")
        if not isinstance(model, str) or model not in allowed_models:
            raise PolicyDenied(
                f"model {model!r} is not allowed",
                reasons=[f"allowed models: {', '.join(allowed_models) or '<none>'}"],
            )
    allowed_tools = boundaries.allowed_tools
    if allowed_tools is not None:
        refused = [name for name in requested_tools(body) if name not in allowed_tools]
        if refused:
            raise PolicyDenied(
                f"tools not allowed: {', '.join(refused)}",
                reasons=[f"tool {name!r} is not allowed" for name in refused],
            )
    cap = boundaries.tokens
    if cap is None:
        return body
    forwarded = body
    present = False
    for field in _TOKEN_FIELDS:
        if field not in body:
            continue
        present = True
        value = body[field]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestRejected(f"{field} must be a positive integer, got {value!r}")
        if value > cap.max_tokens:
            if cap.mode is TokenCapMode.REJECT:
                raise PolicyDenied(
                    f"{field}={value} exceeds the cap of {cap.max_tokens}",
                    reasons=[f"{field} is capped at {cap.max_tokens}"],
                )
            forwarded = {**forwarded, field: cap.max_tokens}
    if not present and cap.default_when_missing:
        forwarded = {**forwarded, "max_tokens": cap.max_tokens}
    return forwarded
