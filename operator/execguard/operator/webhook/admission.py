"""AdmissionReview in, AdmissionReview out: the webhook's logic, without HTTP.

Errors (drawn per boundary):

    MalformedReview      the body is not an admission/v1 AdmissionReview -> HTTP 400
    ClusterUnavailable   the API could not be read -> HTTP 500, the failurePolicy applies

`dryRun` requests get the same answer as real ones but no side effects: no
Events are posted (metrics are still counted, labelled dry_run).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from execguard.operator.api.policy import EnforcementAction
from execguard.operator.webhook.cluster_view import ClusterView
from execguard.operator.webhook.injection import InjectionSpec
from execguard.operator.webhook.metrics import WebhookMetrics
from execguard.operator.webhook.mutation import mutate
from execguard.operator.webhook.reviews import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    AdmissionReviewResponse,
    Pod,
)
from execguard.operator.webhook.selection import Deny, Inject, Skip, decide, has_sidecar

logger = logging.getLogger(__name__)

OPERATIONS: Final = ("CREATE", "UPDATE", "DELETE", "CONNECT")
EventType = Literal["Normal", "Warning"]


class MalformedReview(ValueError):
    """The request body is not an AdmissionReview the webhook can answer."""


@dataclass(frozen=True)
class EventTarget:
    """What an Event is about: the pod's owner, or the pod when it has a name."""

    namespace: str
    kind: str
    name: str
    api_version: str
    uid: str | None = None


EventSink = Callable[[EventTarget, EventType, str, str], Awaitable[None]]
"""Posts an Event (target, type, reason, message); failures are the sink's to log."""


def _require(mapping: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedReview(f"{where}.{key} must be a {kind.__name__}")
    return value


def parse_review(body: bytes) -> AdmissionReview:
    """Check an untrusted body against the admission/v1 AdmissionReview shape."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedReview(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise MalformedReview("body must be a JSON object (an AdmissionReview)")
    if document.get("apiVersion") != "admission.k8s.io/v1":
        raise MalformedReview("apiVersion must be admission.k8s.io/v1")
    if document.get("kind") != "AdmissionReview":
        raise MalformedReview("kind must be AdmissionReview")
    request = _require(document, "request", dict, "AdmissionReview")
    uid = _require(request, "uid", str, "request")
    if not uid:
        raise MalformedReview("request.uid must not be empty")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}")
    for key in ("kind", "resource"):
        value = _require(request, key, dict, "request")
        for part in ("group", "version", "kind" if key == "kind" else "resource"):
            _require(value, part, str, f"request.{key}")
    for key in ("namespace", "name", "subResource"):
        if key in request and not isinstance(request[key], str):
            raise MalformedReview(f"request.{key} must be a string")
    if "dryRun" in request and not isinstance(request["dryRun"], bool):
        raise MalformedReview("request.dryRun must be a boolean")
    for key in ("object", "oldObject"):
        value = request.get(key)
        if value is not None:
            _check_pod_shape(value, f"request.{key}")
    if operation in ("CREATE", "UPDATE") and request.get("object") is None:
        raise MalformedReview(f"request.object is required for {operation}")
    return cast(AdmissionReview, document)


def _check_pod_shape(value: object, where: str) -> None:
    """The parts of a pod the mutation walks must have the types it expects."""
    if not isinstance(value, dict):
        raise MalformedReview(f"{where} must be an object")
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise MalformedReview(f"{where}.metadata must be an object")
    for key in ("labels", "annotations"):
        mapping = metadata.get(key, {})
        if mapping is None:
            continue
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise MalformedReview(f"{where}.metadata.{key} must map strings to strings")
    spec = value.get("spec", {})
    if not isinstance(spec, dict):
        raise MalformedReview(f"{where}.spec must be an object")
    for key in ("containers", "initContainers", "volumes"):
        items = spec.get(key, [])
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise MalformedReview(f"{where}.spec.{key} must be a list of objects")
        for index, item in enumerate(items):
            if "name" in item and not isinstance(item["name"], str):
                raise MalformedReview(f"{where}.spec.{key}[{index}].name must be a string")
            ports = item.get("ports", [])
            if ports is None:
                continue
            if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
                raise MalformedReview(f"{where}.spec.{key}[{index}].ports must be a list")
            for port in ports:
                number = port.get("containerPort", 0)
                if not isinstance(number, int) or isinstance(number, bool):
                    raise MalformedReview(
                        f"{where}.spec.{key}[{index}].ports[].containerPort must be an integer"
                    )
                if "name" in port and not isinstance(port["name"], str):
                    raise MalformedReview(f"{where}.spec.{key}[{index}].ports[].name: string")


def _response(uid: str, **fields: Any) -> AdmissionReviewResponse:
    response = cast(AdmissionResponse, {"uid": uid, "allowed": True, **fields})
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def _is_pod(request: AdmissionRequest) -> bool:
    resource = request["resource"]
    return (
        resource["group"] == ""
        and resource["resource"] == "pods"
        and not request.get("subResource")
    )


def event_target(request: AdmissionRequest, pod: Pod) -> EventTarget:
    """The pod's controller if it has one (new pods have no name yet), else the pod."""
    namespace = request.get("namespace", "")
    metadata = pod.get("metadata", {})
    for owner in metadata.get("ownerReferences", []):
        if owner.get("controller"):
            return EventTarget(
                namespace,
                str(owner.get("kind")),
                str(owner.get("name")),
                str(owner.get("apiVersion")),
                str(owner.get("uid")),
            )
    name = metadata.get("name") or request.get("name") or metadata.get("generateName", "")
    return EventTarget(namespace, "Pod", name, "v1")


class Admission:
    """Answers mutating and validating AdmissionReviews for pods."""

    def __init__(
        self,
        view: ClusterView,
        spec: InjectionSpec,
        metrics: WebhookMetrics,
        events: EventSink,
        spawn: Callable[[Awaitable[None]], object],
    ) -> None:
        self._view = view
        self._spec = spec
        self._metrics = metrics
        self._events = events
        # Events are posted in the background: they must not add to admission latency.
        self._spawn = spawn

    def _event(
        self, request: AdmissionRequest, pod: Pod, type_: EventType, reason: str, text: str
    ) -> None:
        if request.get("dryRun"):
            return
        self._spawn(self._events(event_target(request, pod), type_, reason, text))

    async def mutate(self, review: AdmissionReview) -> AdmissionReviewResponse:
        """Inject the sidecar into a pod being created, or explain why not."""
        request = review["request"]
        started = time.perf_counter()
        result = "ignored"
        try:
            pod = request.get("object")
            if not _is_pod(request) or request["operation"] != "CREATE" or pod is None:
                return _response(request["uid"])
            if has_sidecar(pod):
                result = "skipped"  # re-applied or re-invoked: nothing to read, nothing to do
                return _response(request["uid"])
            namespace = request.get("namespace") or pod.get("metadata", {}).get("namespace", "")
            snapshot = await self._view.snapshot(namespace)
            if snapshot is None:
                result = "skipped"
                return _response(request["uid"])
            mutation = mutate(pod, namespace, snapshot.labels, snapshot.policies, self._spec)
            fields: dict[str, Any] = {}
            if mutation.warnings:
                fields["warnings"] = mutation.warnings
            match mutation.decision:
                case Deny(message=message):
                    result = "denied"
                    self._event(request, pod, "Warning", "InjectionRefused", message)
                    return _response(
                        request["uid"],
                        allowed=False,
                        status={"code": 403, "reason": "Forbidden", "message": message},
                    )
                case Inject():
                    result = "injected"
                    fields["auditAnnotations"] = {
                        "injected-by": mutation.decision.injected_by,
                    }
                case Skip(reason=reason, explain=True):
                    result = "refused"
                    self._event(request, pod, "Warning", "SidecarNotInjected", reason)
                case Skip():
                    result = "skipped"
            if mutation.patch:
                encoded = json.dumps(mutation.patch, separators=(",", ":")).encode()
                fields["patchType"] = "JSONPatch"
                fields["patch"] = base64.b64encode(encoded).decode()
            return _response(request["uid"], **fields)
        except Exception:
            result = "error"
            raise
        finally:
            self._metrics.observe("mutate", result, bool(request.get("dryRun")), started)

    async def validate(self, review: AdmissionReview) -> AdmissionReviewResponse:
        """Report (and with a policy's opt-in refuse) selected pods running without the sidecar.

        A pod arriving here has been through every mutating webhook: if it should
        carry the sidecar but does not, the injection was skipped (webhook down with
        failurePolicy Ignore) or the sidecar was removed.
        """
        request = review["request"]
        started = time.perf_counter()
        result = "ignored"
        try:
            pod = request.get("object")
            if (
                not _is_pod(request)
                or pod is None
                or request["operation"]
                not in (
                    "CREATE",
                    "UPDATE",
                )
            ):
                return _response(request["uid"])
            if has_sidecar(pod):
                # The common case (the injector ran): no API reads needed.
                result = "ok"
                return _response(request["uid"])
            namespace = request.get("namespace") or pod.get("metadata", {}).get("namespace", "")
            snapshot = await self._view.snapshot(namespace)
            if snapshot is None:
                result = "ok"
                return _response(request["uid"])
            decision = decide(pod, namespace, snapshot.labels, snapshot.policies, self._spec)
            if isinstance(decision, Deny):
                result = "denied"
                return _response(
                    request["uid"],
                    allowed=False,
                    status={"code": 403, "reason": "Forbidden", "message": decision.message},
                )
            if not isinstance(decision, Inject) or (
                decision.enforcement is not EnforcementAction.ENFORCE
            ):
                result = "ok"
                return _response(request["uid"])
            names = ", ".join(p.key.slug for p in decision.policies)
            message = (
                f"pod is selected by execguard policies in enforce mode ({names}) but has no "
                "execguard sidecar: its traffic is not checked"
            )
            self._metrics.missing_sidecar_admissions.labels(operation=request["operation"]).inc()
            refusing = [p for p in decision.policies if p.key in snapshot.deny_missing_sidecar]
            # Only new pods are refused: refusing updates would wedge running pods
            # (status, finalizers, deletion) without making them any safer.
            if refusing and request["operation"] == "CREATE":
                result = "denied"
                self._event(request, pod, "Warning", "MissingSidecarRefused", message)
                return _response(
                    request["uid"],
                    allowed=False,
                    status={"code": 403, "reason": "Forbidden", "message": message},
                )
            result = "warned"
            if request["operation"] == "CREATE":
                self._event(request, pod, "Warning", "MissingSidecar", message)
            return _response(request["uid"], warnings=[f"execguard: {message}"])
        except Exception:
            result = "error"
            raise
        finally:
            self._metrics.observe("validate", result, bool(request.get("dryRun")), started)
