"""The image-to-command table: what "running an image" means on this node."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageCommand:
    """The local command standing in for an image's entrypoint.

    `argv` may contain `{pod_ip}`, replaced by the pod's loopback address.
    `env` is added to the container's environment (the container's own wins).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


ImageTable = Mapping[str, ImageCommand]
"""Image reference (exactly as written in the pod spec) to its local command."""
