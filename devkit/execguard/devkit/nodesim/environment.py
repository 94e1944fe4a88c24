"""A container's environment, resolved the way kubelet resolves it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from execguard.devkit.nodesim.resources import ResourceReader, field_value

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: unknown references stay as written, `$$` escapes."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REFERENCE.sub(replace, value)


def _resource_field(container: Any, resource: str) -> str:
    # Only what a process could act on; divisors are not applied.
    kind, _, name = resource.partition(".")
    resources = container.resources
    values = (getattr(resources, kind, None) if resources else None) or {}
    return str(values.get(name, "0"))


def container_env(
    pod: Any, container: Any, pod_ip: str, reader: ResourceReader, base: Mapping[str, str]
) -> dict[str, str]:
    """envFrom first, then env in order (later entries see earlier ones), over `base`."""
    namespace = pod.metadata.namespace
    env: dict[str, str] = dict(base)
    for source in container.env_from or []:
        prefix = source.prefix or ""
        data: dict[str, str] | None = None
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            data = reader.config_map(namespace, ref.name, bool(ref.optional))
        elif source.secret_ref is not None:
            ref = source.secret_ref
            data = reader.secret(namespace, ref.name, bool(ref.optional))
        for key, value in (data or {}).items():
            env[prefix + key] = value
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = expand(var.value or "", env)
            continue
        source = var.value_from
        resolved: str | None
        if source.field_ref is not None:
            resolved = field_value(pod, source.field_ref.field_path, pod_ip)
        elif source.resource_field_ref is not None:
            resolved = _resource_field(container, source.resource_field_ref.resource)
        elif source.config_map_key_ref is not None:
            ref = source.config_map_key_ref
            resolved = reader.key("configmap", namespace, ref.name, ref.key, bool(ref.optional))
        elif source.secret_key_ref is not None:
            ref = source.secret_key_ref
            resolved = reader.key("secret", namespace, ref.name, ref.key, bool(ref.optional))
        else:
            resolved = None
        if resolved is not None:
            env[var.name] = resolved
    return env
