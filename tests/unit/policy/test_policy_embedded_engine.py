"""The embedded engine's behaviour at its edges: bad policies, bad input,
runaway evaluations, limits. Each failure must be a specific PolicyError
with a message a person can act on."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from execguard.sidecar.policy.embedded import EmbeddedEngine
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyDataInvalid,
    PolicyEvaluationFailed,
    PolicyInputInvalid,
    PolicyUnavailable,
)
from execguard.sidecar.policy.input import PolicyInput, RequestView
from execguard.sidecar.policy.limits import EngineLimits

DENY_BIG_MODEL = """package execguard.request
import rego.v1
deny contains sprintf("model %s is not allowed", [input.request.body.model]) if {
  input.request.body.model != "small"
}
"""

# 4 * 10^8 iterations in constant memory: practically never finishes.
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


@pytest.fixture
async def engine():
    engine = EmbeddedEngine(EngineLimits(eval_timeout=0.3))
    yield engine
    await engine.close()


async def test_policy_denies_and_allows_by_input(engine: EmbeddedEngine) -> None:
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    denied = await engine.evaluate("request", request({"model": "huge"}))
    allowed = await engine.evaluate("request", request({"model": "small"}))
    assert denied.deny == {"model huge is not allowed"}
    assert not denied.allowed
    assert allowed.allowed


async def test_input_text_with_quotes_and_backslashes_round_trips(engine: EmbeddedEngine) -> None:
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    decision = await engine.evaluate("request", request({"model": 'a "quoted" \\ name\n'}))
    assert decision.deny == {'model a "quoted" \\ name\n is not allowed'}


async def test_compile_error_names_module_and_line(engine: EmbeddedEngine) -> None:
    source = "package execguard.request\nimport rego.v1\n\ndeny contains x if {\n  x := \n}\n"
    with pytest.raises(PolicyCompileError) as caught:
        await engine.load({"broken.rego": source}, {})
    assert caught.value.module == "broken.rego"
    assert caught.value.line == 5
    assert str(caught.value).startswith("broken.rego:5: ")


async def test_failed_load_keeps_the_last_good_policy(engine: EmbeddedEngine) -> None:
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    with pytest.raises(PolicyCompileError):
        await engine.load({"p.rego": "package execguard.request\ndeny contains"}, {})
    decision = await engine.evaluate("request", request({"model": "huge"}))
    assert decision.deny == {"model huge is not allowed"}


async def test_user_module_may_not_take_a_library_name(engine: EmbeddedEngine) -> None:
    with pytest.raises(PolicyCompileError, match="reserved for the execguard library"):
        await engine.load({"execguard/lib/pii.rego": "package x"}, {})


async def test_runaway_policy_fails_within_budget_and_engine_recovers(
    engine: EmbeddedEngine,
) -> None:
    await engine.load({"p.rego": RUNAWAY}, {})
    with pytest.raises(PolicyEvaluationFailed, match=r"did not finish within 0\.3s"):
        await engine.evaluate("request", request({}))
    # A good policy loaded afterwards evaluates on a fresh worker.
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    decision = await engine.evaluate("request", request({"model": "huge"}))
    assert not decision.allowed


async def test_repeated_runaway_evaluations_each_fail_within_budget() -> None:
    engine = EmbeddedEngine(EngineLimits(eval_timeout=0.2))
    try:
        await engine.load({"p.rego": RUNAWAY}, {})
        for _ in range(3):
            # Each time the stuck worker is killed and a loaded one takes its place.
            with pytest.raises(PolicyEvaluationFailed, match="did not finish within"):
                await engine.evaluate("request", request({}))
        await engine.load({"p.rego": DENY_BIG_MODEL}, {})
        assert not (await engine.evaluate("request", request({"model": "huge"}))).allowed
    finally:
        await engine.close()


async def test_killed_worker_fails_one_request_as_unavailable_then_recovers(
    engine: EmbeddedEngine,
) -> None:
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    (pid,) = engine.worker_pids()
    # As the OOM killer or a crash in native code would end it.
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(PolicyUnavailable, match="exited with signal 9"):
        await engine.evaluate("request", request({"model": "huge"}))
    decision = await engine.evaluate("request", request({"model": "huge"}))
    assert decision.deny == {"model huge is not allowed"}
    assert engine.worker_pids() != (pid,)


async def test_event_loop_keeps_running_during_a_runaway_evaluation(
    engine: EmbeddedEngine,
) -> None:
    await engine.load({"p.rego": RUNAWAY}, {})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(PolicyEvaluationFailed):
            await engine.evaluate("request", request({}))
    finally:
        task.cancel()
    # The native evaluation runs off the loop: the ticker kept going.
    assert ticks >= 5


async def test_runtime_conflict_is_an_evaluation_error(engine: EmbeddedEngine) -> None:
    policy = """package execguard.request
import rego.v1
limit := 1 if input.request.body.a
limit := 2 if input.request.body.a
deny contains "x" if limit > 0
"""
    await engine.load({"p.rego": policy}, {})
    with pytest.raises(PolicyEvaluationFailed, match=r"p\.rego:4: rule conflicts"):
        await engine.evaluate("request", request({"a": True}))


async def test_non_string_deny_message_is_refused_with_its_type(engine: EmbeddedEngine) -> None:
    policy = 'package execguard.request\nimport rego.v1\ndeny contains {"m": 1} if true\n'
    await engine.load({"p.rego": policy}, {})
    with pytest.raises(PolicyEvaluationFailed, match="must contain only strings, got object"):
        await engine.evaluate("request", request({}))


async def test_input_that_is_not_json_is_refused(engine: EmbeddedEngine) -> None:
    await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    with pytest.raises(PolicyInputInvalid, match="not JSON-serialisable"):
        await engine.evaluate("request", request({"temperature": float("nan")}))


async def test_data_over_the_size_limit_is_refused() -> None:
    engine = EmbeddedEngine(EngineLimits(max_data_bytes=1024))
    try:
        with pytest.raises(PolicyDataInvalid, match=r"over the limit of 1024 bytes"):
            await engine.load({"p.rego": DENY_BIG_MODEL}, {"blob": "x" * 2000})
    finally:
        await engine.close()


async def test_data_that_is_not_json_is_refused(engine: EmbeddedEngine) -> None:
    with pytest.raises(PolicyDataInvalid, match="not JSON-serialisable"):
        await engine.load({"p.rego": DENY_BIG_MODEL}, {"when": object()})


async def test_modules_over_the_size_limit_are_refused() -> None:
    engine = EmbeddedEngine(EngineLimits(max_module_bytes=100))
    try:
        with pytest.raises(PolicyDataInvalid, match="policy modules are"):
            await engine.load({"p.rego": DENY_BIG_MODEL}, {})
    finally:
        await engine.close()


async def test_evaluating_before_load_is_unavailable(engine: EmbeddedEngine) -> None:
    with pytest.raises(PolicyUnavailable, match="no policy is loaded"):
        await engine.evaluate("request", request({}))


async def test_data_document_is_visible_to_rules(engine: EmbeddedEngine) -> None:
    policy = """package execguard.request
import rego.v1
deny contains "not allowed" if not input.request.body.model in data.allowed
"""
    await engine.load({"p.rego": policy}, {"allowed": ["small"]})
    assert (await engine.evaluate("request", request({"model": "small"}))).allowed
    assert not (await engine.evaluate("request", request({"model": "big"}))).allowed


def test_limits_refuse_nonsense_values() -> None:
    with pytest.raises(ValueError, match="eval_timeout must be a positive number"):
        EngineLimits(eval_timeout=0)
    with pytest.raises(ValueError, match="max_data_bytes must be positive"):
        EngineLimits(max_data_bytes=-1)


# rego-cpp 1.5 cannot build this (arithmetic inside a reference); regorus can.
ARITHMETIC_IN_A_REFERENCE = """package execguard.request
import rego.v1
table := [{"0": 0, "1": 1}, {"0": 0, "1": 2}]
weights(digits) := sum([v |
  some i
  c := digits[i]
  v := table[((count(digits) - 1) - i) % 2][c]
])
deny contains "odd" if weights(split(input.request.body.d, "")) % 2 == 1
"""


async def test_arithmetic_inside_a_reference_evaluates(engine: EmbeddedEngine) -> None:
    await engine.load({"p.rego": ARITHMETIC_IN_A_REFERENCE}, {})
    assert (await engine.evaluate("request", request({"d": "11"}))).deny == {"odd"}
    assert (await engine.evaluate("request", request({"d": "10"}))).allowed


async def test_evaluations_queued_behind_a_runaway_fail_within_budget() -> None:
    engine = EmbeddedEngine(EngineLimits(eval_timeout=0.2))
    try:
        await engine.load({"p.rego": RUNAWAY}, {})
        results = await asyncio.gather(
            *(engine.evaluate("request", request({})) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, PolicyEvaluationFailed) for result in results), results
        await engine.load({"p.rego": DENY_BIG_MODEL}, {})
        assert (await engine.evaluate("request", request({"model": "small"}))).allowed
    finally:
        await engine.close()


# Runs practically forever, but only for inputs that ask for it.
SLOW_ON_REQUEST = """package execguard.request
import rego.v1
deny contains "never" if {
  input.request.body.slow
  some x in numbers.range(1, 20000)
  some y in numbers.range(1, 20000)
  x * y == -1
}
deny contains "big model" if input.request.body.model == "big"
"""


async def test_with_two_workers_a_stuck_evaluation_does_not_block_others() -> None:
    engine = EmbeddedEngine(EngineLimits(eval_timeout=5.0), workers=2)
    try:
        await engine.load({"p.rego": SLOW_ON_REQUEST}, {})
        assert len(engine.worker_pids()) == 2
        stuck = asyncio.create_task(engine.evaluate("request", request({"slow": True})))
        await asyncio.sleep(0)  # the stuck evaluation takes the first worker
        decision = await engine.evaluate("request", request({"model": "big"}))
        assert decision.deny == {"big model"}
        assert not stuck.done()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
    finally:
        await engine.close()


async def test_failing_builtin_is_undefined_as_in_opa(engine: EmbeddedEngine) -> None:
    policy = """package execguard.request
import rego.v1
answer := json.unmarshal(input.request.body.text)
deny contains "not JSON" if not json.is_valid(input.request.body.text)
warn contains "parsed" if answer
"""
    await engine.load({"p.rego": policy}, {})
    decision = await engine.evaluate("request", request({"text": "plain words"}))
    assert decision.deny == {"not JSON"}
    assert decision.warn == frozenset()
    assert (await engine.evaluate("request", request({"text": "{}"}))).warn == {"parsed"}


async def test_policy_that_prints_still_answers(engine: EmbeddedEngine) -> None:
    policy = """package execguard.request
import rego.v1
deny contains "x" if {
  print("checking", input.request.body.model)
  input.request.body.model == "big"
}
"""
    await engine.load({"p.rego": policy}, {})
    assert (await engine.evaluate("request", request({"model": "big"}))).deny == {"x"}
    assert (await engine.evaluate("request", request({"model": "small"}))).allowed
