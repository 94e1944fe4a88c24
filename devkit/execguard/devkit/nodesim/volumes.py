"""Pod volumes materialised as local directories.

ConfigMap, Secret, downwardAPI and projected volumes are written atomically
(a new directory swapped in by rename of a symlink, like kubelet's
`..data` link), and rewritten when their source changes, so a process that
watches its mounted config sees updates the way it would in a cluster.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from execguard.devkit.nodesim.resources import MissingReference, ResourceReader, field_value


@dataclass(frozen=True)
class Mount:
    """A container's mount: where the pod spec says, and where it really is."""

    mount_path: str
    local_path: Path


def _items(data: dict[str, str], items: Any) -> dict[str, str]:
    if not items:
        return dict(data)
    selected: dict[str, str] = {}
    for item in items:
        if item.key not in data:
            raise MissingReference(f'key "{item.key}" not found')
        selected[item.path] = data[item.key]
    return selected


def _downward(pod: Any, items: Any, pod_ip: str) -> dict[str, str]:
    files: dict[str, str] = {}
    for item in items or []:
        if item.field_ref is not None:
            files[item.path] = field_value(pod, item.field_ref.field_path, pod_ip)
    return files


def volume_files(
    pod: Any, volume: Any, pod_ip: str, reader: ResourceReader
) -> dict[str, str] | None:
    """Relative path -> content for a file-backed volume; None for an emptyDir-like one."""
    namespace = pod.metadata.namespace
    if volume.config_map is not None:
        source = volume.config_map
        data = reader.config_map(namespace, source.name, bool(source.optional))
        return _items(data or {}, source.items)
    if volume.secret is not None:
        source = volume.secret
        data = reader.secret(namespace, source.secret_name, bool(source.optional))
        return _items(data or {}, source.items)
    if volume.downward_api is not None:
        return _downward(pod, volume.downward_api.items, pod_ip)
    if volume.projected is not None:
        files: dict[str, str] = {}
        for source in volume.projected.sources or []:
            if source.config_map is not None:
                cm = source.config_map
                files |= _items(
                    reader.config_map(namespace, cm.name, bool(cm.optional)) or {}, cm.items
                )
            elif source.secret is not None:
                sec = source.secret
                files |= _items(
                    reader.secret(namespace, sec.name, bool(sec.optional)) or {}, sec.items
                )
            elif source.downward_api is not None:
                files |= _downward(pod, source.downward_api.items, pod_ip)
            elif source.service_account_token is not None:
                sat = source.service_account_token
                files[sat.path] = reader.service_account_token(
                    pod, sat.audience, sat.expiration_seconds
                )
        return files
    if volume.empty_dir is not None:
        return None
    raise MissingReference(f'volume "{volume.name}" has a type the node simulator does not run')


class VolumeDirectory:
    """One volume's directory; `path` is stable, its content swapped atomically."""

    def __init__(self, root: Path) -> None:
        self.path = root
        self._content: dict[str, str] | None = None

    def write(self, files: dict[str, str] | None) -> bool:
        """Write the files if they changed; True when something changed."""
        if files is None:
            self.path.mkdir(parents=True, exist_ok=True)
            return False
        if files == self._content:
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        generation = self.path / f"..{uuid.uuid4().hex[:8]}"
        generation.mkdir()
        for relative, content in files.items():
            target = generation / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        link = self.path / "..data"
        tmp_link = self.path / "..data_tmp"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(generation.name)
        os.replace(tmp_link, link)
        for relative in files:
            top = relative.split("/", 1)[0]
            entry = self.path / top
            if not entry.is_symlink():
                entry.symlink_to(Path("..data") / top)
        for old in self.path.glob("..*"):
            if old.is_dir() and not old.is_symlink() and old != generation:
                shutil.rmtree(old, ignore_errors=True)
        self._content = dict(files)
        return True
