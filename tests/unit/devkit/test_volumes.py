"""Volume directories update atomically, like kubelet's ..data symlink swap."""

from __future__ import annotations

from execguard.devkit.nodesim.pods import _rewrite
from execguard.devkit.nodesim.volumes import Mount, VolumeDirectory


def test_files_are_readable_through_stable_paths_and_replaced_on_change(tmp_path):
    volume = VolumeDirectory(tmp_path / "config")
    assert volume.write({"config.json": '{"v": 1}'})
    path = tmp_path / "config" / "config.json"
    assert path.read_text() == '{"v": 1}'

    assert not volume.write({"config.json": '{"v": 1}'}), "unchanged content is not rewritten"

    assert volume.write({"config.json": '{"v": 2}'})
    assert path.read_text() == '{"v": 2}'
    generations = [
        p for p in (tmp_path / "config").iterdir() if p.name.startswith("..") and not p.is_symlink()
    ]
    assert len(generations) == 1, "old generations are removed"


def test_mount_paths_in_arguments_point_at_the_local_volume(tmp_path):
    mounts = [
        Mount("/etc/execguard/policies", tmp_path / "p"),
        Mount("/etc/execguard", tmp_path / "c"),
    ]
    assert _rewrite("/etc/execguard/config.json", mounts) == f"{tmp_path}/c/config.json"
    assert _rewrite("/etc/execguard/policies/a.rego", mounts) == f"{tmp_path}/p/a.rego"
    assert (
        _rewrite("--config=/etc/execguard/config.json", mounts)
        == f"--config={tmp_path}/c/config.json"
    )
    assert _rewrite("/etc/execguardian", mounts) == "/etc/execguardian"
