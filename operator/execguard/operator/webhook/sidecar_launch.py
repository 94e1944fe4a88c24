"""The injected sidecar's entrypoint: `execguard webhook injected-sidecar`.

The sidecar takes one config file (`--config FILE`), rendered per profile by the
operator into the namespace's ConfigMap. What only the pod knows — its address,
name, namespace and labels — is not in that shared file, and the file may appear
a moment after the pod starts (the operator writes it when it sees the pod). This
launcher bridges both without changing the sidecar:

* it waits for the pod's config file (`<config dir>/<key>`), so the sidecar does
  not start, exit and back off in a crash loop while the operator catches up;
* it writes a derived copy into the pod's scratch volume with the pod address as
  listen/admin/upstream host (the sidecar and the model share the pod address in
  a cluster and in the node simulator alike), the ports the webhook chose, the
  workload identity from the downward API, and the OPA URL;
* it re-derives the copy whenever the source changes (ConfigMap updates), and the
  sidecar hot-reloads it as usual; a key change in the pod's annotations (read
  through the downward API) is followed too.

A source that does not parse is copied as it is, so the sidecar reports the
error itself and keeps its last good config.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from execguard.operator.rendering.configmap import CONFIG_KEY_ANNOTATION

logger = logging.getLogger(__name__)

DERIVED_NAME: Final = "sidecar.json"
DOWNWARD_LINE: Final = re.compile(r'^([^=]+)="(.*)"$')


@dataclass(frozen=True)
class LaunchSettings:
    """Flags of `execguard webhook injected-sidecar` (written by the webhook)."""

    config_dir: Path
    config_key: str
    podinfo_dir: Path
    run_dir: Path
    pod_ip: str | None
    listen_port: int
    admin_port: int
    opa_url: str | None = None
    poll_seconds: float = 1.0


def read_downward_map(path: Path) -> dict[str, str]:
    """A downward API labels/annotations file (`key="escaped value"` per line)."""
    result: dict[str, str] = {}
    try:
        text = path.read_text()
    except OSError:
        return result
    for line in text.splitlines():
        match = DOWNWARD_LINE.match(line)
        if not match:
            continue
        try:
            result[match.group(1)] = json.loads(f'"{match.group(2)}"')
        except ValueError:
            result[match.group(1)] = match.group(2)
    return result


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def current_key(settings: LaunchSettings) -> str:
    """The config key: the pod's annotation if the operator changed it, else the flag."""
    annotations = read_downward_map(settings.podinfo_dir / "annotations")
    key = annotations.get(CONFIG_KEY_ANNOTATION, settings.config_key)
    # Never follow a key out of the config directory.
    return key if key and "/" not in key and not key.startswith(".") else settings.config_key


def derive(source: bytes, settings: LaunchSettings) -> bytes:
    """The sidecar's config for this pod, from the shared profile `source`."""
    try:
        document: Any = json.loads(source)
    except ValueError:
        return source
    if not isinstance(document, dict):
        return source

    def section(name: str) -> dict[str, Any]:
        value = document.get(name)
        if not isinstance(value, dict):
            value = {}
            document[name] = value
        return value

    listen, admin, upstream = section("listen"), section("admin"), section("upstream")
    listen["port"] = settings.listen_port
    admin["port"] = settings.admin_port
    if settings.pod_ip:
        listen["host"] = settings.pod_ip
        admin["host"] = settings.pod_ip
        upstream["host"] = settings.pod_ip
    if settings.opa_url is not None:
        section("engine")["opaUrl"] = settings.opa_url
    workload = section("workload")
    name = _read(settings.podinfo_dir / "name")
    namespace = _read(settings.podinfo_dir / "namespace")
    if name:
        workload["pod"] = name
    if namespace:
        workload["namespace"] = namespace
    labels = read_downward_map(settings.podinfo_dir / "labels")
    if labels:
        workload["labels"] = labels
    return json.dumps(document, separators=(",", ":")).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


class Deriver:
    """Keeps the derived config in step with the source."""

    def __init__(self, settings: LaunchSettings) -> None:
        self.settings = settings
        self.target = settings.run_dir / DERIVED_NAME
        self._last: bytes | None = None

    def refresh(self) -> bool:
        """Re-derive if needed; True once a derived config exists."""
        source_path = self.settings.config_dir / current_key(self.settings)
        try:
            source = source_path.read_bytes()
        except OSError:
            return self._last is not None
        derived = derive(source, self.settings)
        if derived != self._last:
            _write_atomically(self.target, derived)
            self._last = derived
        return True

    def wait_until_ready(self) -> None:
        """Block until the pod's config file exists and a derived copy is written."""
        announced = False
        while not self.refresh():
            if not announced:
                logger.warning(
                    "waiting for %s to appear (the operator writes it for new pods)",
                    self.settings.config_dir / current_key(self.settings),
                )
                announced = True
            time.sleep(self.settings.poll_seconds)

    def follow(self, stop: threading.Event) -> None:
        """Re-derive on every poll until `stop` is set."""
        while not stop.wait(self.settings.poll_seconds):
            try:
                self.refresh()
            except OSError as error:
                logger.warning("re-deriving the sidecar config failed: %s", error)
