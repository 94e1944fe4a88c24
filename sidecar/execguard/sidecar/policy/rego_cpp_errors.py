"""Reading rego-cpp's compile errors into `PolicyCompileError` (module and line).

rego-cpp reports errors as an S-expression of the failing AST, e.g.::

    (rego-errorseq
      (error 6:t.rego|49|1
        (errormsg 16:this is unclosed)
        (errorast |49|1 ...)))

Strings are length-prefixed (`6:t.rego`, `16:this is unclosed`) and the
location is a byte offset into the module source, so the line is computed
from the source we handed in. The AST dump is dropped: users need the
message and the line, not the parser's tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from regopy import Bundle
from regopy.rego_shared import RegoError, rego_node_get, rego_node_size, rego_node_value

_ERROR_HEAD: Final = re.compile(r"\(error (\d+):")
_MESSAGE_HEAD: Final = re.compile(r"\(errormsg (\d+):")
_LOCATION: Final = re.compile(r"\|(\d+)\|(\d+)")


@dataclass(frozen=True)
class CompileProblem:
    """One error rego-cpp reported: where and what."""

    module: str | None
    line: int | None
    message: str


def _length_prefixed(text: str, start: int, length: int) -> str:
    # Lengths are in bytes of UTF-8; slicing the encoded form keeps
    # non-ASCII module names and messages intact.
    raw = text[start:].encode("utf-8")[:length]
    return raw.decode("utf-8", errors="replace")


def parse_problems(error_text: str, sources: dict[str, str]) -> list[CompileProblem]:
    """All errors in a rego-cpp error sequence, with lines resolved from `sources`."""
    problems: list[CompileProblem] = []
    for head in _ERROR_HEAD.finditer(error_text):
        name_length = int(head.group(1))
        module = _length_prefixed(error_text, head.end(), name_length)
        after_name = head.end() + len(module)
        location = _LOCATION.match(error_text, after_name)
        line: int | None = None
        if location is not None and module in sources:
            offset = int(location.group(1))
            prefix = sources[module].encode("utf-8")[:offset]
            line = prefix.count(b"\n") + 1
        message_head = _MESSAGE_HEAD.search(error_text, after_name)
        message = "compile error"
        if message_head is not None:
            message = _length_prefixed(
                error_text, message_head.end(), int(message_head.group(1))
            ).strip()
        problems.append(
            CompileProblem(module=module if module in sources else None, line=line, message=message)
        )
    if not problems:
        # Not an error sequence (e.g. a plain message): keep its first line.
        first = error_text.strip().splitlines()[0] if error_text.strip() else "compile error"
        problems.append(CompileProblem(module=None, line=None, message=first))
    return problems


def _locate(snippet: str, sources: dict[str, str]) -> tuple[str | None, int | None]:
    """The module and line where a source snippet from an error occurs."""
    probe = snippet.strip().splitlines()[0] if snippet.strip() else ""
    if not probe:
        return None, None
    for name, source in sources.items():
        index = source.find(probe)
        if index >= 0:
            return name, source.count("\n", 0, index) + 1
    return None, None


def _node_text(node: object) -> str:
    try:
        return str(rego_node_value(node))
    except (RegoError, UnicodeDecodeError):
        return ""


def bundle_problem(bundle: Bundle, sources: dict[str, str]) -> tuple[CompileProblem, int]:
    """The first error of a bundle that did not build, and how many there are.

    A failed build carries an error sequence instead of a plan: each error
    holds a message and the offending source text (no offset), so the line
    is found by looking that text up in the modules.
    """
    errors = bundle.node()._impl
    count = rego_node_size(errors)
    if count == 0:
        return CompileProblem(None, None, "rego-cpp could not build the policy bundle"), 1
    error = rego_node_get(errors, 0)
    parts = [_node_text(rego_node_get(error, i)) for i in range(rego_node_size(error))]
    message = parts[0] if parts and parts[0] else "rego-cpp could not build the policy bundle"
    module, line = _locate(parts[1], sources) if len(parts) > 1 else (None, None)
    return CompileProblem(module, line, message), count
