"""Webhook settings: read once at the edge (environment and CLI flags), then passed down.

Environment variables carry the prefix `EXECGUARD_WEBHOOK_`, e.g.
`EXECGUARD_WEBHOOK_FAILURE_POLICY=Ignore`. CLI flags of `execguard webhook serve` win.

`failure_policy` defaults to `Fail`: the sidecar *is* the enforcement, so a pod
admitted without it while the webhook is unreachable is a silent policy bypass.
The blast radius of `Fail` is kept small by the selectors: only pods that opted
in (pod or namespace label) are ever sent to the webhook, and kube-system,
kube-public, kube-node-lease and execguard's own namespace are always excluded,
so the webhook's own pods and the control plane can always start. Choose
`Ignore` where availability of opted-in workloads matters more than enforcement;
the validating check and the periodic audit then report what slipped through.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from execguard.operator.webhook.injection import InjectionSpec, ResourceSpec

ENV_PREFIX: Final = "EXECGUARD_WEBHOOK_"
ALWAYS_EXCLUDED_NAMESPACES: Final = ("kube-system", "kube-public", "kube-node-lease")
OPA_IMAGE: Final = "openpolicyagent/opa:1.4.2-static"
"""Pinned OPA server image injected with `engine: opa`."""
SIDECAR_IMAGE: Final = "ghcr.io/execguard/execguard:0.1.0"


class SettingsError(ValueError):
    """A setting has a value the webhook cannot use; the message names it."""


class WebhookSettings(BaseModel):
    """Everything `execguard webhook serve` is configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig to use; in-cluster config when unset."
    )
    host: str = Field(default="0.0.0.0", description="Address the HTTPS server binds to.")
    port: int = Field(default=9443, ge=1, le=65_535, description="HTTPS port of the webhook.")
    namespace: str = Field(
        default="execguard-system",
        min_length=1,
        description="execguard's own namespace: always excluded from injection; holds the "
        "TLS Secret and the Lease.",
    )
    service_name: str = Field(
        default="execguard-webhook", description="The Service in front of the webhook replicas."
    )
    service_port: int = Field(default=443, ge=1, le=65_535, description="The Service's port.")
    url: str | None = Field(
        default=None,
        description="Call the webhook at this https URL instead of through the Service "
        "(out-of-cluster development and tests).",
    )
    tls_secret: str = Field(
        default="execguard-webhook-tls",
        description="Secret with ca.crt, tls.crt and tls.key (written by the managing "
        "replica, or by cert-manager).",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="Serve this certificate file instead of the Secret's."
    )
    tls_key_file: Path | None = Field(default=None, description="Key for tls_cert_file.")
    extra_sans: tuple[str, ...] = Field(
        default=(), description="Extra DNS names or IP addresses for the serving certificate."
    )
    manage: bool = Field(
        default=True,
        description="Take part in the Lease: the holder issues/rotates the certificate, "
        "writes the webhook configurations and runs the audit.",
    )
    cert_manager: bool = Field(
        default=False,
        description="cert-manager owns the Secret and the caBundle: never issue certificates.",
    )
    lease_name: str = Field(default="execguard-webhook", description="Name of the Lease.")
    identity: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        description="This replica's identity in the Lease (the pod name in a cluster).",
    )
    failure_policy: Literal["Fail", "Ignore"] = Field(
        default="Fail", description="failurePolicy of the mutating webhook (see module doc)."
    )
    validating_failure_policy: Literal["Fail", "Ignore"] = Field(
        default="Ignore",
        description="failurePolicy of the validating check; the audit backs it up.",
    )
    timeout_seconds: int = Field(
        default=2, ge=1, le=3, description="timeoutSeconds of both webhooks."
    )
    excluded_namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces excluded in addition to the always-excluded ones."
    )
    audit_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often the managing replica audits pods."
    )
    cert_validity_days: int = Field(default=365, ge=1, description="Serving certificate lifetime.")
    ca_validity_days: int = Field(default=3650, ge=2, description="CA certificate lifetime.")
    rotate_before_days: int = Field(
        default=30, ge=1, description="Re-issue a certificate this long before it expires."
    )
    sidecar_image: str = Field(default=SIDECAR_IMAGE, description="The injected sidecar image.")
    opa_image: str = Field(default=OPA_IMAGE, description="The OPA image for `engine: opa`.")
    sidecar_port: int = Field(default=8443, ge=1, le=65_535, description="Sidecar proxy port.")
    admin_port: int = Field(default=9090, ge=1, le=65_535, description="Sidecar admin port.")
    opa_port: int = Field(default=8181, ge=1, le=65_535, description="OPA port (localhost).")
    sidecar_cpu_request: str = "50m"
    sidecar_memory_request: str = "64Mi"
    sidecar_cpu_limit: str = "1"
    sidecar_memory_limit: str = "256Mi"
    opa_cpu_request: str = "50m"
    opa_memory_request: str = "64Mi"
    opa_cpu_limit: str = "500m"
    opa_memory_limit: str = "256Mi"

    @model_validator(mode="after")
    def _consistent(self) -> WebhookSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if len({self.sidecar_port, self.admin_port, self.opa_port}) != 3:
            raise ValueError("sidecar_port, admin_port and opa_port must differ")
        if self.url is not None and not self.url.startswith("https://"):
            raise ValueError("url must start with https://")
        return self

    @property
    def all_excluded_namespaces(self) -> tuple[str, ...]:
        """Namespaces never injected: the system ones, our own, and the configured extras."""
        names = [*ALWAYS_EXCLUDED_NAMESPACES, self.namespace, *self.excluded_namespaces]
        return tuple(dict.fromkeys(names))

    def injection(self) -> InjectionSpec:
        """What gets injected, as the pure mutation takes it."""
        return InjectionSpec(
            sidecar_image=self.sidecar_image,
            opa_image=self.opa_image,
            sidecar_port=self.sidecar_port,
            admin_port=self.admin_port,
            opa_port=self.opa_port,
            sidecar_resources=ResourceSpec(
                cpu_request=self.sidecar_cpu_request,
                memory_request=self.sidecar_memory_request,
                cpu_limit=self.sidecar_cpu_limit,
                memory_limit=self.sidecar_memory_limit,
            ),
            opa_resources=ResourceSpec(
                cpu_request=self.opa_cpu_request,
                memory_request=self.opa_memory_request,
                cpu_limit=self.opa_cpu_limit,
                memory_limit=self.opa_memory_limit,
            ),
            excluded_namespaces=frozenset(self.all_excluded_namespaces),
        )


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> WebhookSettings:
    """Settings from `EXECGUARD_WEBHOOK_*` variables, with non-None `overrides` on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, field in WebhookSettings.model_fields.items():
        variable = ENV_PREFIX + name.upper()
        if variable in environ:
            raw = environ[variable]
            is_tuple = "tuple" in str(field.annotation)
            values[name] = (
                tuple(p.strip() for p in raw.split(",") if p.strip()) if is_tuple else raw
            )
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return WebhookSettings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in issue['loc']).upper() or 'SETTINGS'}: "
            f"{issue['msg']}"
            for issue in error.errors(include_url=False)
        )
        raise SettingsError(f"invalid webhook settings: {problems}") from error
