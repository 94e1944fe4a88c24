"""One pod's lifecycle on the simulated node: volumes, init containers,
native sidecars, main containers, restarts, probes and the status kubelet
would report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execguard.devkit.nodesim.containers import ContainerProcess, now_rfc3339
from execguard.devkit.nodesim.environment import container_env, expand
from execguard.devkit.nodesim.images import ImageTable
from execguard.devkit.nodesim.resources import MissingReference, ResourceReader
from execguard.devkit.nodesim.volumes import Mount, VolumeDirectory, volume_files


def _is_native_sidecar(container: Any) -> bool:
    return getattr(container, "restart_policy", None) == "Always"


def _rewrite(value: str, mounts: list[Mount]) -> str:
    for mount in mounts:
        if value == mount.mount_path or value.startswith(mount.mount_path.rstrip("/") + "/"):
            return str(mount.local_path) + value[len(mount.mount_path.rstrip("/")) :]
        # Flags such as --config=/etc/x/config.json carry the path after '='.
        flag, sep, rest = value.partition("=")
        if sep and (
            rest == mount.mount_path or rest.startswith(mount.mount_path.rstrip("/") + "/")
        ):
            return flag + "=" + _rewrite(rest, mounts)
    return value


@dataclass
class PodRuntime:
    """Everything the node keeps for one pod."""

    uid: str
    namespace: str
    name: str
    pod_ip: str
    directory: Path
    images: ImageTable
    containers: dict[str, ContainerProcess] = field(default_factory=dict)
    volumes: dict[str, VolumeDirectory] = field(default_factory=dict)
    volumes_ready: bool = False
    init_done: set[str] = field(default_factory=set)
    failed: bool = False
    start_time: str = field(default_factory=now_rfc3339)
    message: str | None = None
    transitions: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def log_path(self, container: str) -> Path:
        """Where a container's stdout and stderr go."""
        return self.directory / "logs" / f"{container}.log"

    def _container(self, spec: Any) -> ContainerProcess:
        if spec.name not in self.containers:
            self.log_path(spec.name).parent.mkdir(parents=True, exist_ok=True)
            self.containers[spec.name] = ContainerProcess(
                spec=spec, log_path=self.log_path(spec.name)
            )
        return self.containers[spec.name]

    def _sync_volumes(self, pod: Any, reader: ResourceReader) -> None:
        for volume in pod.spec.volumes or []:
            directory = self.volumes.setdefault(
                volume.name, VolumeDirectory(self.directory / "volumes" / volume.name)
            )
            directory.write(volume_files(pod, volume, self.pod_ip, reader))
        self.volumes_ready = True

    def _mounts(self, spec: Any) -> list[Mount]:
        mounts = []
        for mount in spec.volume_mounts or []:
            directory = self.volumes[mount.name].path
            local = directory / mount.sub_path if mount.sub_path else directory
            mounts.append(Mount(mount_path=mount.mount_path, local_path=local))
        # Longest first, so /etc/a/b is matched before /etc/a.
        return sorted(mounts, key=lambda m: len(m.mount_path), reverse=True)

    def _launch(self, pod: Any, spec: Any, reader: ResourceReader) -> None:
        process = self._container(spec)
        image = self.images.get(spec.image)
        if image is None:
            process.waiting_reason = "ErrImagePull"
            process.waiting_message = f"image {spec.image!r} is not in the node simulator's table"
            return
        try:
            env = container_env(pod, spec, self.pod_ip, reader, image.env)
        except MissingReference as exc:
            process.waiting_reason = "CreateContainerConfigError"
            process.waiting_message = str(exc)
            return
        mounts = self._mounts(spec)
        env = {key: _rewrite(value, mounts) for key, value in env.items()}
        entry = [arg.replace("{pod_ip}", self.pod_ip) for arg in image.argv]
        command = [expand(arg, env) for arg in (spec.command or [])]
        args = [expand(arg, env) for arg in (spec.args or [])]
        # Only what the pod spec wrote refers to mount paths; the image's own
        # entrypoint is a host path and stays as it is.
        written = [_rewrite(arg, mounts) for arg in command + args]
        argv = written if command else entry + written
        base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.directory)}
        # Local processes need the host's interpreter paths to start at all.
        for key in ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "LANG"):
            if key in os.environ:
                base_env[key] = os.environ[key]
        try:
            process.start(argv, base_env | env, cwd=self.directory)
        except OSError as exc:
            process.waiting_reason = "RunContainerError"
            process.waiting_message = f"cannot start {argv[0]!r}: {exc.strerror or exc}"

    def _supervise(self, pod: Any, spec: Any, reader: ResourceReader, restart: str) -> None:
        process = self._container(spec)
        if process.process is None:
            self._launch(pod, spec, reader)
            return
        process.poll()
        if process.probe(self.pod_ip):
            process.stop(grace_seconds=float(pod.spec.termination_grace_period_seconds or 1))
        if process.running:
            return
        if restart == "Always" or (restart == "OnFailure" and process.exit_code != 0):
            self._launch(pod, spec, reader)

    def tick(self, pod: Any, reader: ResourceReader) -> None:
        """Advance the pod one step towards its spec."""
        if self.failed:
            return
        try:
            self._sync_volumes(pod, reader)
            self.message = None
        except MissingReference as exc:
            self.message = str(exc)
            if not self.volumes_ready:
                return
        restart = pod.spec.restart_policy or "Always"
        for spec in pod.spec.init_containers or []:
            if _is_native_sidecar(spec):
                self._supervise(pod, spec, reader, "Always")
                process = self.containers[spec.name]
                # Later containers wait until the sidecar is up, as kubelet
                # waits for a sidecar's start (or its startup probe).
                if not process.running:
                    return
                continue
            if spec.name in self.init_done:
                continue
            process = self._container(spec)
            if process.process is None:
                self._launch(pod, spec, reader)
                return
            process.poll()
            if process.running:
                return
            if process.exit_code == 0:
                self.init_done.add(spec.name)
                continue
            if restart == "Never":
                self.failed = True
                return
            self._launch(pod, spec, reader)
            return
        for spec in pod.spec.containers:
            self._supervise(pod, spec, reader, restart)

    def stop(self, grace_seconds: float) -> None:
        """Stop main containers first, then sidecars and init containers."""
        order = list(self.containers.values())
        main = [c for c in order if not _is_native_sidecar(c.spec)]
        sidecars = [c for c in order if _is_native_sidecar(c.spec)]
        for process in main + list(reversed(sidecars)):
            process.stop(grace_seconds)

    def _phase(self, pod: Any) -> str:
        if self.failed:
            return "Failed"
        main = [self.containers.get(spec.name) for spec in pod.spec.containers]
        if any(c is None or c.process is None for c in main):
            return "Pending"
        restart = pod.spec.restart_policy or "Always"
        finished = [c for c in main if c is not None and not c.running and c.exit_code is not None]
        if restart != "Always" and len(finished) == len(main):
            if all(c.exit_code == 0 for c in finished):
                return "Succeeded"
            if restart == "Never":
                return "Failed"
        return "Running"

    def status(self, pod: Any) -> dict[str, Any]:
        """The pod status kubelet would write now."""
        now = now_rfc3339()
        init_specs = pod.spec.init_containers or []
        main_specs = pod.spec.containers
        initialized = all(
            (self.containers[s.name].running if _is_native_sidecar(s) else s.name in self.init_done)
            for s in init_specs
            if s.name in self.containers
        ) and all(s.name in self.containers for s in init_specs)
        containers_ready = all(
            self.containers[s.name].ready for s in main_specs if s.name in self.containers
        ) and all(s.name in self.containers for s in main_specs)
        sidecars_ready = all(
            self.containers[s.name].ready
            for s in init_specs
            if _is_native_sidecar(s) and s.name in self.containers
        )
        ready = containers_ready and sidecars_ready

        def condition(kind: str, value: bool) -> dict[str, str]:
            previous = self.transitions.get(kind)
            if previous is None or previous[0] != value:
                self.transitions[kind] = (value, now)
            since = self.transitions[kind][1]
            return {
                "type": kind,
                "status": "True" if value else "False",
                "lastTransitionTime": since,
            }

        def statuses(specs: list[Any]) -> list[dict[str, Any]]:
            result = []
            for spec in specs:
                process = self.containers.get(spec.name)
                if process is None:
                    result.append(
                        {
                            "name": spec.name,
                            "image": spec.image,
                            "imageID": "",
                            "ready": False,
                            "started": False,
                            "restartCount": 0,
                            "state": {"waiting": {"reason": "PodInitializing"}},
                        }
                    )
                else:
                    result.append(process.status(spec.image))
            return result

        status: dict[str, Any] = {
            "phase": self._phase(pod),
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", initialized),
                condition("ContainersReady", containers_ready),
                condition("Ready", ready),
            ],
            "containerStatuses": statuses(main_specs),
        }
        if init_specs:
            status["initContainerStatuses"] = statuses(init_specs)
        # A merge patch keeps keys it is not given: say "no message" explicitly.
        status["message"] = self.message
        return status
