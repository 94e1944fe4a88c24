"""A real OPA server for the conformance suite, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from execguard.devkit.binaries import BinaryNotBuilt, find_binary
from execguard.devkit.opa_process import OpaProcess


@pytest.fixture(scope="session")
def opa_server() -> Iterator[OpaProcess]:
    """`opa run --server` on a free loopback port (skips if opa is not built)."""
    try:
        binary = find_binary("opa")
    except BinaryNotBuilt as error:
        pytest.skip(str(error))
    with OpaProcess(binary=binary) as server:
        yield server
