"""Choosing the policy engine a config asks for."""

from __future__ import annotations

from execguard.sidecar.config import ConfigError, EngineKind, SidecarConfig
from execguard.sidecar.policy.engine import PolicyEngine


def create_policy_engine(config: SidecarConfig) -> PolicyEngine:
    """A fresh, unloaded engine of the configured kind."""
    if config.engine.kind is EngineKind.EMBEDDED:
        # Imported here so a sidecar without Rego modules never loads the native library.
        from execguard.sidecar.policy.embedded import EmbeddedEngine
        from execguard.sidecar.policy.limits import EngineLimits

        return EmbeddedEngine(EngineLimits(eval_timeout=config.engine.timeout_seconds))
    raise ConfigError(f"engine kind {config.engine.kind.value!r} is not available in this build")
