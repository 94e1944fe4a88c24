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


def _read(folder_name: str) -> MappingProxyType[str, str]:
    folder = resources.files("execguard.sidecar.policy").joinpath("rego", folder_name)
    modules = {
        f"{LIBRARY_PREFIX}{entry.name}": entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda item: item.name)
        if entry.name.endswith(".rego")
    }
    return MappingProxyType(modules)


@cache
def library_modules() -> MappingProxyType[str, str]:
    """Module name (`execguard/lib/<topic>.rego`) -> Rego source, read once."""
    return _read("lib")


@cache
def native_library_modules() -> MappingProxyType[str, str]:
    """Library modules the embedded engine replaces, by the same module name.

    Their rules call functions the regorus worker provides natively
    (`native_pii`); only an engine that registers those may load them.
    """
    return _read("native")


def with_native_library(modules: dict[str, str]) -> dict[str, str]:
    """`modules` with every unchanged library module swapped for its native variant."""
    shipped = library_modules()
    return {
        name: native if source == shipped.get(name) else source
        for name, source in modules.items()
        for native in (native_library_modules().get(name, source),)
    }


def with_library(modules: dict[str, str]) -> dict[str, str]:
    """The user's modules plus the library; a user module may not take a library name."""
    clashes = sorted(name for name in modules if name.startswith(LIBRARY_PREFIX))
    if clashes:
        raise PolicyCompileError(
            f"module names under {LIBRARY_PREFIX} are reserved for the execguard library",
            module=clashes[0],
        )
    return {**library_modules(), **modules}
