"""The node simulator: our kubelet stand-in for e2e tests and the demo.

It registers one Node, binds pending pods to it, and runs each pod's
containers as local processes from an image-to-command table, each pod on its
own loopback address (127.0.0.N), in the spirit of kwok but actually running
the workload. Supported: native sidecars (init containers with
`restartPolicy: Always`), regular init containers, env vars (values, fieldRef,
configMap/secret refs, envFrom), ConfigMap/Secret/downwardAPI/emptyDir and
projected volumes (materialised as files and refreshed like kubelet does),
HTTP and TCP readiness/liveness probes, restartPolicy, graceful deletion.

Processes share the host network, so an image's command must listen on the
pod address: `{pod_ip}` in an image's argv is replaced by it, and so is any
volume mountPath in argv and env values by the local directory holding that
volume's files.
"""

from execguard.devkit.nodesim.images import ImageCommand, ImageTable
from execguard.devkit.nodesim.simulator import NodeSimulator

__all__ = ["ImageCommand", "ImageTable", "NodeSimulator"]
