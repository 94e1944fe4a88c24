"""The Rego library shipped with execguard (`data.execguard.lib.*`).

Loaded into every engine beside the user's modules, so rules can
`import data.execguard.lib.pii` and stay a few lines long. The sources live
next to this module under `rego/lib/` and are package data of the wheel.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from execguard.sidecar.policy.errors import PolicyCompileError

# Module names the library occupies; user modules may not reuse them.
LIBRARY_PREFIX: Final = "execguard/lib/"


@cache
def library_modules() -> MappingProxyType[str, str]:
    """Module name (`execguard/lib/<topic>.rego`) -> Rego source, read once."""
    folder = resources.files("execguard.sidecar.policy").joinpath("rego", "lib")
    modules = {
        f"{LIBRARY_PREFIX}{entry.name}": entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda item: item.name)
        if entry.name.endswith(".rego")
    }
    return MappingProxyType(modules)


def with_library(modules: dict[str, str]) -> dict[str, str]:
    """The user's modules plus the library; a user module may not take a library name."""
    clashes = sorted(name for name in modules if name.startswith(LIBRARY_PREFIX))
    if clashes:
        raise PolicyCompileError(
            f"module names under {LIBRARY_PREFIX} are reserved for the execguard library",
            module=clashes[0],
        )
    return {**library_modules(), **modules}
