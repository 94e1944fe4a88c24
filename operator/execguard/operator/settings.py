"""Operator settings: read once at the edge (environment and CLI flags), then passed down.

Environment variables carry the prefix `EXECGUARD_OPERATOR_`, e.g.
`EXECGUARD_OPERATOR_METRICS_PORT=9090`. CLI flags of `execguard operator` win.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX: Final = "EXECGUARD_OPERATOR_"


class SettingsError(ValueError):
    """A setting has a value the operator cannot use; the message names it."""


class OperatorSettings(BaseModel):
    """Everything the operator process is configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig to use; in-cluster config when unset."
    )
    metrics_port: int = Field(
        default=8080, ge=0, le=65_535, description="Port of /metrics; 0 disables it."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address /metrics binds to.")
    health_port: int = Field(
        default=8081, ge=0, le=65_535, description="Port of kopf's /healthz probe; 0 disables it."
    )
    leader_election: bool = Field(
        default=True, description="Act only while holding the Lease (for several replicas)."
    )
    lease_name: str = Field(default="execguard-operator", description="Name of the Lease.")
    lease_namespace: str = Field(
        default="execguard-system", description="Namespace of the Lease (the operator's own)."
    )
    identity: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        description="This replica's identity in the Lease (the pod name in a cluster).",
    )
    lease_duration_seconds: int = Field(
        default=15, ge=2, le=300, description="How long a lease holder is trusted without renewing."
    )
    renew_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often the leader renews the Lease."
    )
    retry_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often a standby tries to acquire the Lease."
    )
    opa_path: Path | None = Field(
        default=None,
        description="An `opa` binary for `opa check` of Rego modules (stricter than the "
        "embedded engine alone); skipped when unset.",
    )


def load_settings(
    environ: Mapping[str, str] | None = None, **overrides: object
) -> OperatorSettings:
    """Settings from `EXECGUARD_OPERATOR_*` variables, with non-None `overrides` on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in OperatorSettings.model_fields:
        variable = ENV_PREFIX + name.upper()
        if variable in environ:
            values[name] = environ[variable]
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        settings = OperatorSettings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in issue['loc']).upper()}: {issue['msg']}"
            for issue in error.errors(include_url=False)
        )
        raise SettingsError(f"invalid operator settings: {problems}") from error
    if settings.renew_interval_seconds >= settings.lease_duration_seconds:
        raise SettingsError(
            f"{ENV_PREFIX}RENEW_INTERVAL_SECONDS must be shorter than LEASE_DURATION_SECONDS"
        )
    return settings
