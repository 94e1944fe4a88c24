"""Real OPA servers, and misbehaving stand-ins, for the OPA engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from execguard.devkit.binaries import BinaryNotBuilt, find_binary
from execguard.devkit.opa_process import OpaProcess


@pytest.fixture(scope="session")
def opa_binary():
    """The opa built by hack/build-binaries.sh (skips if it is not built)."""
    try:
        return find_binary("opa")
    except BinaryNotBuilt as error:
        pytest.skip(str(error))


@pytest.fixture
def opa_server(opa_binary) -> Iterator[OpaProcess]:
    """A fresh `opa run --server` for one test."""
    with OpaProcess(binary=opa_binary) as server:
        yield server
