"""The injected entrypoint: waits for the pod's config, fills in what only the pod knows."""

from __future__ import annotations

import json
import threading

from execguard.operator.webhook.sidecar_launch import Deriver, LaunchSettings, derive
from execguard.sidecar.config import parse_config


def settings(tmp_path, **changes):
    for name in ("config", "podinfo", "run"):
        (tmp_path / name).mkdir(exist_ok=True)
    values = {
        "config_dir": tmp_path / "config",
        "config_key": "pod-abc.json",
        "podinfo_dir": tmp_path / "podinfo",
        "run_dir": tmp_path / "run",
        "pod_ip": "127.0.0.7",
        "listen_port": 8443,
        "admin_port": 9090,
        "poll_seconds": 0.01,
        **changes,
    }
    return LaunchSettings(**values)


def test_derived_config_listens_and_forwards_on_the_pod_address(tmp_path):
    (tmp_path / "podinfo").mkdir()
    (tmp_path / "podinfo" / "name").write_text("chat-1")
    (tmp_path / "podinfo" / "namespace").write_text("team-a")
    (tmp_path / "podinfo" / "labels").write_text('app="chat"\nexecguard.io/inject="enabled"\n')
    source = json.dumps({"upstream": {"port": 8000}}).encode()
    config = parse_config(derive(source, settings(tmp_path, opa_url="http://127.0.0.1:8181")))
    assert (config.listen.host, config.listen.port) == ("127.0.0.7", 8443)
    assert (config.admin.host, config.admin.port) == ("127.0.0.7", 9090)
    assert (config.upstream.host, config.upstream.port) == ("127.0.0.7", 8000)
    assert config.workload.pod == "chat-1"
    assert config.workload.namespace == "team-a"
    assert config.workload.labels == {"app": "chat", "execguard.io/inject": "enabled"}
    assert config.engine.opa_url == "http://127.0.0.1:8181"


def test_unparsable_source_is_passed_on_for_the_sidecar_to_report(tmp_path):
    assert derive(b"{not json", settings(tmp_path)) == b"{not json"


def test_launcher_waits_for_a_config_file_that_appears_later(tmp_path):
    deriver = Deriver(settings(tmp_path))
    done = threading.Event()
    thread = threading.Thread(target=lambda: (deriver.wait_until_ready(), done.set()))
    thread.start()
    assert not done.wait(0.1)
    # Written as the kubelet does (an atomic swap), so no half-written file is seen.
    (tmp_path / "config" / ".tmp").write_text("{}")
    (tmp_path / "config" / ".tmp").rename(tmp_path / "config" / "pod-abc.json")
    thread.join(5)
    assert done.is_set()
    assert json.loads(deriver.target.read_text())["listen"]["host"] == "127.0.0.7"


def test_a_changed_source_is_derived_again(tmp_path):
    deriver = Deriver(settings(tmp_path))
    (tmp_path / "config" / "pod-abc.json").write_text('{"generation": 1}')
    deriver.refresh()
    (tmp_path / "config" / "pod-abc.json").write_text('{"generation": 2}')
    deriver.refresh()
    assert json.loads(deriver.target.read_text())["generation"] == 2


def test_key_in_the_pod_annotations_wins_but_never_leaves_the_directory(tmp_path):
    s = settings(tmp_path)
    (tmp_path / "config" / "pod-new.json").write_text('{"generation": 5}')
    (tmp_path / "podinfo" / "annotations").write_text('execguard.io/config-key="pod-new.json"\n')
    deriver = Deriver(s)
    assert deriver.refresh()
    assert json.loads(deriver.target.read_text())["generation"] == 5
    (tmp_path / "podinfo" / "annotations").write_text('execguard.io/config-key="../x"\n')
    (tmp_path / "config" / "pod-abc.json").write_text('{"generation": 1}')
    deriver.refresh()
    assert json.loads(deriver.target.read_text())["generation"] == 1
