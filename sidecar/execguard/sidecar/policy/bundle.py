"""Writing a policy set as an OPA bundle directory (`opa run --bundle DIR`).

For the `opa` engine in bundle mode: the operator (or a test) renders the
user's modules, the shipped library and the data document into a folder
that is mounted into the OPA container, instead of pushing them over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from execguard.sidecar.policy.errors import PolicyDataInvalid
from execguard.sidecar.policy.library import with_library
from execguard.sidecar.policy.limits import EngineLimits, check_modules, encode_data


def _safe_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name.endswith(".rego"):
        raise PolicyDataInvalid(
            f"module {name!r}: bundle module names must be relative paths ending in .rego"
        )
    return path


def write_bundle(
    directory: Path,
    modules: dict[str, str],
    data: dict[str, object],
    limits: EngineLimits | None = None,
) -> None:
    """Write modules (with the library) and `data.json` under `directory`."""
    limits = limits or EngineLimits()
    check_modules(modules, limits)
    data_json = encode_data(data, limits)
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in with_library(modules).items():
        target = directory / _safe_relative(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source, encoding="utf-8")
    (directory / "data.json").write_text(data_json, encoding="utf-8")
    # No roots in the manifest: the bundle owns the whole data tree.
    (directory / ".manifest").write_text(json.dumps({"revision": ""}), encoding="utf-8")
