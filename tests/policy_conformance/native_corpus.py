"""Running a corpus through a probe policy on the embedded engine and on OPA.

A probe policy puts one `warn` entry per corpus item, `json.marshal([index,
value])`, so a single evaluation per engine answers for the whole corpus.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from execguard.devkit.opa_process import OpaProcess
from execguard.sidecar.policy.embedded import EmbeddedEngine
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.input import PolicyInput, RequestView
from execguard.sidecar.policy.limits import EngineLimits
from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings

# Generous: OPA runs the whole corpus in one evaluation.
LIMITS = EngineLimits(eval_timeout=30.0)


async def probe_answers(
    engine: PolicyEngine, probe: str, params: dict[str, object]
) -> dict[int, object]:
    """Index -> value of the probe's warn entries, from one evaluation."""
    try:
        await engine.load({"probe.rego": probe}, {})
        document = PolicyInput.model_validate(
            {"phase": "request", "request": RequestView(method="POST", path="/"), "params": params}
        )
        decision = await engine.evaluate("request", document)
    finally:
        await engine.close()
    answers: dict[int, object] = {}
    for entry in decision.warn:
        index, value = json.loads(entry)
        answers[index] = value
    return answers


async def differences_from_opa(
    opa_server: OpaProcess,
    probe: str,
    params: dict[str, object],
    size: int,
    describe: Callable[[int], str],
) -> tuple[dict[int, object], list[str]]:
    """OPA's answers, and a readable line for every item the embedded engine answers otherwise."""
    embedded = await probe_answers(EmbeddedEngine(LIMITS), probe, params)
    settings = OpaServerSettings(host=opa_server.host, port=opa_server.port)
    opa = await probe_answers(OpaServerEngine(settings, LIMITS), probe, params)
    assert len(opa) == size, "OPA left corpus items out: the probe is undefined for them"
    differences = [
        f"{describe(index)}\n  embedded: {embedded.get(index)}\n  opa:      {opa[index]}"
        for index in sorted(opa)
        if embedded.get(index) != opa[index]
    ]
    return opa, differences
