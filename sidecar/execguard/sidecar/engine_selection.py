"""Choosing the policy engine a config asks for."""

from __future__ import annotations

from execguard.sidecar.config import EngineKind, SidecarConfig
from execguard.sidecar.policy.engine import PolicyEngine
from execguard.sidecar.policy.limits import EngineLimits


def create_policy_engine(config: SidecarConfig) -> PolicyEngine:
    """A fresh, unloaded engine of the configured kind."""
    limits = EngineLimits(eval_timeout=config.engine.timeout_seconds)
    if config.engine.kind is EngineKind.OPA:
        from execguard.sidecar.policy.opa_server import OpaServerEngine, OpaServerSettings

        return OpaServerEngine(OpaServerSettings.from_url(config.engine.opa_url), limits)
    # Imported here so a sidecar without Rego modules never loads the native library.
    from execguard.sidecar.policy.embedded import EmbeddedEngine

    return EmbeddedEngine(limits)


def engine_is_shared_state(config: SidecarConfig) -> bool:
    """Whether the engine's policies live outside the process (an OPA server).

    Such an engine is reused across reloads, so its next `load` replaces the
    modules it installed instead of a second instance leaving stale ones behind.
    """
    return config.engine.kind is EngineKind.OPA
