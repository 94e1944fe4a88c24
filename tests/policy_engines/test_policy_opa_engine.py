"""The OPA engine against a real `opa run --server`, a stopped one, and
servers that answer slowly or with garbage. Every failure must surface as a
specific PolicyError, bounded in time."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_opa import Behaviour, fake_opa

from execguard.devkit.controlplane.cluster import free_port
from execguard.devkit.opa_process import OpaProcess
from execguard.sidecar.policy.bundle import write_bundle
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyDataInvalid,
    PolicyEvaluationFailed,
    PolicyUnavailable,
)
from execguard.sidecar.policy.input import PolicyInput, RequestView
from execguard.sidecar.policy.limits import EngineLimits
from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings

pytestmark = pytest.mark.opa

DENY_BIG = """package execguard.request
import rego.v1
import data.execguard.lib.openai
deny contains sprintf("model %s is not allowed", [m]) if {
  m := openai.model(input.request.body)
  not m in {x | some x in data.allowed}
}
"""

RUNAWAY = """package execguard.request
import rego.v1
deny contains "never" if {
  some x in numbers.range(1, 20000)
  some y in numbers.range(1, 20000)
  x * y == -1
}
"""


def request(body: object) -> PolicyInput:
    return PolicyInput(phase="request", request=RequestView(method="POST", path="/", body=body))


def engine_for(port: int, **limits: float) -> OpaServerEngine:
    return OpaServerEngine(
        OpaServerSettings(port=port), EngineLimits(**limits) if limits else EngineLimits()
    )


async def test_pushed_policy_and_data_decide(opa_server: OpaProcess) -> None:
    engine = engine_for(opa_server.port)
    try:
        await engine.load({"p.rego": DENY_BIG}, {"allowed": ["small"]})
        assert (await engine.evaluate("request", request({"model": "small"}))).allowed
        denied = await engine.evaluate("request", request({"model": "huge"}))
        assert denied.deny == {"model huge is not allowed"}
    finally:
        await engine.close()


async def test_compile_error_names_module_and_line_and_keeps_last_good_set(
    opa_server: OpaProcess,
) -> None:
    engine = engine_for(opa_server.port)
    bad = "package execguard.request\nimport rego.v1\n\ndeny contains x if {\n  x := \n}\n"
    try:
        await engine.load({"p.rego": DENY_BIG}, {"allowed": ["small"]})
        with pytest.raises(PolicyCompileError) as caught:
            await engine.load({"p.rego": DENY_BIG, "broken.rego": bad}, {"allowed": []})
        assert caught.value.module == "broken.rego"
        assert caught.value.line == 6
        # The server still runs the previous modules and data.
        assert (await engine.evaluate("request", request({"model": "small"}))).allowed
    finally:
        await engine.close()


async def test_new_engine_replaces_modules_left_by_an_earlier_one(
    opa_server: OpaProcess,
) -> None:
    first = engine_for(opa_server.port)
    always = 'package execguard.request\nimport rego.v1\ndeny contains "old" if true\n'
    await first.load({"old.rego": always}, {})
    await first.close()
    second = engine_for(opa_server.port)
    try:
        await second.load({"p.rego": DENY_BIG}, {"allowed": ["small"]})
        decision = await second.evaluate("request", request({"model": "small"}))
        assert decision.allowed, decision
    finally:
        await second.close()


async def test_runaway_policy_is_cut_off_at_the_budget(opa_server: OpaProcess) -> None:
    engine = engine_for(opa_server.port, eval_timeout=0.5)
    try:
        await engine.load({"p.rego": RUNAWAY}, {})
        with pytest.raises(PolicyEvaluationFailed, match=r"did not finish within 0\.5s"):
            await engine.evaluate("request", request({}))
    finally:
        await engine.close()


async def test_runtime_conflict_is_an_evaluation_error(opa_server: OpaProcess) -> None:
    policy = """package execguard.request
import rego.v1
limit := 1 if input.request.body.a
limit := 2 if input.request.body.a
deny contains "x" if limit > 0
"""
    engine = engine_for(opa_server.port)
    try:
        await engine.load({"p.rego": policy}, {})
        with pytest.raises(PolicyEvaluationFailed, match="HTTP 500"):
            await engine.evaluate("request", request({"a": True}))
    finally:
        await engine.close()


async def test_server_that_is_down_is_unavailable_at_load() -> None:
    engine = engine_for(free_port(), load_timeout=2.0)
    try:
        with pytest.raises(PolicyUnavailable, match="is not healthy"):
            await engine.load({"p.rego": DENY_BIG}, {})
    finally:
        await engine.close()


async def test_server_that_dies_after_load_is_unavailable(opa_binary: Path) -> None:
    server = OpaProcess(binary=opa_binary).start()
    engine = engine_for(server.port)
    try:
        await engine.load({"p.rego": DENY_BIG}, {"allowed": ["small"]})
        server.stop()
        with pytest.raises(PolicyUnavailable, match="unreachable"):
            await engine.evaluate("request", request({"model": "small"}))
    finally:
        server.stop()
        await engine.close()


@pytest.mark.parametrize(
    ("behaviour", "error", "message"),
    [
        ("slow", PolicyEvaluationFailed, r"did not finish within 0\.3s"),
        ("garbage", PolicyEvaluationFailed, "not JSON"),
        ("html", PolicyEvaluationFailed, "not JSON"),
        ("array", PolicyEvaluationFailed, "non-object JSON"),
        # An OPA without the library (say, a bundle built by hand) must not allow everything.
        ("no_result", PolicyEvaluationFailed, "library is not loaded"),
        ("error", PolicyEvaluationFailed, "HTTP 500"),
    ],
)
async def test_misbehaving_server_answers_become_policy_errors(
    behaviour: Behaviour, error: type[Exception], message: str
) -> None:
    async with fake_opa(behaviour) as port:
        engine = engine_for(port, eval_timeout=0.3, load_timeout=2.0)
        try:
            await engine.load({"p.rego": DENY_BIG}, {})
            with pytest.raises(error, match=message):
                await engine.evaluate("request", request({"model": "x"}))
        finally:
            await engine.close()


async def test_garbage_while_loading_is_unavailable_not_a_crash() -> None:
    async with fake_opa("garbage_policies") as port:
        engine = engine_for(port, load_timeout=2.0)
        try:
            with pytest.raises(PolicyUnavailable, match="unusable answer while loading"):
                await engine.load({"p.rego": DENY_BIG}, {})
        finally:
            await engine.close()


async def test_bundle_mode_evaluates_what_the_mounted_bundle_holds(
    opa_binary: Path, tmp_path: Path
) -> None:
    write_bundle(tmp_path / "bundle", {"p.rego": DENY_BIG}, {"allowed": ["small"]})
    with OpaProcess(binary=opa_binary, bundle=tmp_path / "bundle") as server:
        engine = OpaServerEngine(OpaServerSettings(port=server.port, source="bundle"))
        try:
            await engine.load({}, {})
            denied = await engine.evaluate("request", request({"model": "huge"}))
            assert denied.deny == {"model huge is not allowed"}
        finally:
            await engine.close()


def test_bundle_refuses_module_names_that_escape_the_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyDataInvalid, match=r"relative paths ending in \.rego"):
        write_bundle(tmp_path, {"../evil.rego": "package x"}, {})


def test_settings_from_url_refuse_what_is_not_an_http_address() -> None:
    assert OpaServerSettings.from_url("http://127.0.0.1:9191").port == 9191
    with pytest.raises(ValueError, match="must look like"):
        OpaServerSettings.from_url("127.0.0.1:8181")
