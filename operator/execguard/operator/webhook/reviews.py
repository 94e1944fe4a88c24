"""Raw Kubernetes payloads the webhook reads and writes, typed end to end.

Only the fields the webhook looks at are declared; everything is `total=False`
where the API allows a field to be absent. `admission.py` is the one place that
turns an untrusted request body into these types (and refuses what does not fit).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


class ObjectMeta(TypedDict, total=False):
    """The parts of metadata the webhook reads or patches."""

    name: str
    generateName: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[dict[str, object]]


class ContainerPort(TypedDict, total=False):
    """core/v1 ContainerPort."""

    name: str
    containerPort: int
    protocol: str


class ResourceRequirements(TypedDict, total=False):
    """core/v1 ResourceRequirements."""

    requests: dict[str, str]
    limits: dict[str, str]


class Capabilities(TypedDict, total=False):
    """core/v1 Capabilities."""

    drop: list[str]
    add: list[str]


class SeccompProfile(TypedDict):
    """core/v1 SeccompProfile."""

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"]


class SecurityContext(TypedDict, total=False):
    """core/v1 SecurityContext (container level)."""

    runAsNonRoot: bool
    runAsUser: int
    runAsGroup: int
    readOnlyRootFilesystem: bool
    allowPrivilegeEscalation: bool
    privileged: bool
    capabilities: Capabilities
    seccompProfile: SeccompProfile


class ObjectFieldSelector(TypedDict):
    """core/v1 ObjectFieldSelector."""

    fieldPath: str


class EnvVarSource(TypedDict, total=False):
    """core/v1 EnvVarSource (fieldRef only is used here)."""

    fieldRef: ObjectFieldSelector


class EnvVar(TypedDict):
    """core/v1 EnvVar."""

    name: str
    value: NotRequired[str]
    valueFrom: NotRequired[EnvVarSource]


class VolumeMount(TypedDict, total=False):
    """core/v1 VolumeMount."""

    name: str
    mountPath: str
    readOnly: bool


class HTTPGetAction(TypedDict, total=False):
    """core/v1 HTTPGetAction."""

    path: str
    port: int | str
    scheme: str


class TCPSocketAction(TypedDict, total=False):
    """core/v1 TCPSocketAction."""

    port: int | str
    host: str


class Probe(TypedDict, total=False):
    """core/v1 Probe (the handlers that can name a port)."""

    httpGet: HTTPGetAction
    tcpSocket: TCPSocketAction
    initialDelaySeconds: int
    periodSeconds: int
    timeoutSeconds: int
    failureThreshold: int


class Container(TypedDict, total=False):
    """core/v1 Container."""

    name: str
    image: str
    command: list[str]
    args: list[str]
    ports: list[ContainerPort]
    env: list[EnvVar]
    resources: ResourceRequirements
    volumeMounts: list[VolumeMount]
    readinessProbe: Probe
    livenessProbe: Probe
    startupProbe: Probe
    securityContext: SecurityContext
    restartPolicy: str


class KeyToPath(TypedDict):
    """core/v1 KeyToPath / DownwardAPIVolumeFile-ish item."""

    path: str
    fieldRef: NotRequired[ObjectFieldSelector]


class ConfigMapVolumeSource(TypedDict, total=False):
    """core/v1 ConfigMapVolumeSource."""

    name: str
    optional: bool


class DownwardAPIVolumeSource(TypedDict):
    """core/v1 DownwardAPIVolumeSource."""

    items: list[KeyToPath]


class EmptyDirVolumeSource(TypedDict, total=False):
    """core/v1 EmptyDirVolumeSource."""

    medium: str
    sizeLimit: str


class Volume(TypedDict, total=False):
    """core/v1 Volume (the sources the webhook adds; others pass through untouched)."""

    name: str
    configMap: ConfigMapVolumeSource
    downwardAPI: DownwardAPIVolumeSource
    emptyDir: EmptyDirVolumeSource


class PodSpec(TypedDict, total=False):
    """core/v1 PodSpec."""

    containers: list[Container]
    initContainers: list[Container]
    volumes: list[Volume]
    hostNetwork: bool
    nodeName: str


class Pod(TypedDict, total=False):
    """core/v1 Pod as it arrives in an AdmissionReview."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpec


class GroupVersionKind(TypedDict):
    """meta/v1 GroupVersionKind."""

    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    """meta/v1 GroupVersionResource."""

    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    """authentication/v1 UserInfo."""

    username: str
    uid: str
    groups: list[str]


class AdmissionRequest(TypedDict):
    """admission/v1 AdmissionRequest (the fields the webhook uses)."""

    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    operation: Operation
    namespace: NotRequired[str]
    name: NotRequired[str]
    subResource: NotRequired[str]
    object: NotRequired[Pod | None]
    oldObject: NotRequired[Pod | None]
    dryRun: NotRequired[bool]
    userInfo: NotRequired[UserInfo]


class AdmissionReview(TypedDict):
    """admission/v1 AdmissionReview as sent by the apiserver."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class Status(TypedDict, total=False):
    """meta/v1 Status, for a refusal's message and code."""

    code: int
    message: str
    reason: str


class AdmissionResponse(TypedDict):
    """admission/v1 AdmissionResponse."""

    uid: str
    allowed: bool
    status: NotRequired[Status]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReviewResponse(TypedDict):
    """The AdmissionReview the webhook answers with."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse
