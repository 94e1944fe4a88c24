"""JSON Patch (RFC 6902) as the webhook emits it: `add` and `replace` only.

`apply_patch` is a small reference applier used by tests and by the mutation's
own idempotence check; the apiserver applies the real thing.
"""

from __future__ import annotations

import copy
from typing import Literal, TypedDict, TypeVar

T = TypeVar("T")


class PatchOperation(TypedDict):
    """One JSON Patch operation."""

    op: Literal["add", "replace"]
    path: str
    value: object


def escape(token: str) -> str:
    """A key as a JSON Pointer reference token (`/` and `~` escaped)."""
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class PatchError(ValueError):
    """A patch does not apply to the document."""


def apply_patch(document: T, patch: list[PatchOperation]) -> T:
    """A copy of `document` with `patch` applied (add/replace semantics of RFC 6902)."""
    result = copy.deepcopy(document)
    for operation in patch:
        tokens = [_unescape(token) for token in operation["path"].split("/")[1:]]
        if not tokens:
            raise PatchError("patching the whole document is not supported")
        parent: object = result
        for token in tokens[:-1]:
            if isinstance(parent, dict):
                if token not in parent:
                    raise PatchError(f"{operation['path']}: {token!r} does not exist")
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[int(token)]
            else:
                raise PatchError(f"{operation['path']}: cannot descend into a scalar")
        last = tokens[-1]
        value = copy.deepcopy(operation["value"])
        if isinstance(parent, dict):
            if operation["op"] == "replace" and last not in parent:
                raise PatchError(f"{operation['path']}: replace of a missing member")
            parent[last] = value
        elif isinstance(parent, list):
            if operation["op"] == "add":
                index = len(parent) if last == "-" else int(last)
                if not 0 <= index <= len(parent):
                    raise PatchError(f"{operation['path']}: index out of range")
                parent.insert(index, value)
            else:
                parent[int(last)] = value
        else:
            raise PatchError(f"{operation['path']}: parent is a scalar")
    return result
