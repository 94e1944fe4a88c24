"""The Mutating- and ValidatingWebhookConfiguration, written deliberately.

Choices (each a setting where it is a trade-off; docs/injection.md explains them):

* Only pods, only CREATE for the injector (CREATE and UPDATE for the check).
* Two webhook entries per configuration with disjoint selectors, because an
  `objectSelector` cannot say "pod label OR namespace label": one entry for pods
  labelled `execguard.io/inject=enabled` in namespaces that are not, one for every
  pod in namespaces labelled so. Pods that did not opt in never reach the webhook.
* `namespaceSelector` always excludes kube-system, kube-public, kube-node-lease
  and execguard's own namespace (so the webhook can always restart itself).
* A `matchCondition` skips mirror (static) pods, which cannot be changed anyway.
* `failurePolicy` from settings (default Fail for the injector, Ignore for the check).
* `timeoutSeconds` 1-3 (default 2): the apiserver's 10 s default would stall
  every opted-in pod creation behind a hung webhook.
* `sideEffects: NoneOnDryRun`: the webhook posts Events about refused injections,
  and posts none for dryRun requests — exactly what that value declares.
* `reinvocationPolicy: Never`: a re-invocation could only ever see a pod that
  already has the sidecar, for which the mutation is an empty patch; and with
  IfNeeded the apiserver re-invokes on every injected pod (the ServiceAccount
  plugin adds its token mount to the new init container), doubling the calls.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Final, Literal, NotRequired, TypedDict

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from execguard.operator.rendering.configmap import INJECT_ENABLED, INJECT_LABEL
from execguard.operator.webhook.selection import MIRROR_ANNOTATION
from execguard.operator.webhook.settings import WebhookSettings

logger = logging.getLogger(__name__)

MUTATING_NAME: Final = "execguard-sidecar-injector"
VALIDATING_NAME: Final = "execguard-sidecar-check"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "execguard-webhook"}


class Requirement(TypedDict):
    """A label selector requirement."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: NotRequired[list[str]]


class Selector(TypedDict, total=False):
    """A label selector (matchExpressions only; empty matches everything)."""

    matchExpressions: list[Requirement]


class ServiceReference(TypedDict):
    """admissionregistration/v1 ServiceReference."""

    name: str
    namespace: str
    path: str
    port: int


class ClientConfig(TypedDict, total=False):
    """admissionregistration/v1 WebhookClientConfig."""

    service: ServiceReference
    url: str
    caBundle: str


class Rule(TypedDict):
    """admissionregistration/v1 RuleWithOperations."""

    operations: list[str]
    apiGroups: list[str]
    apiVersions: list[str]
    resources: list[str]
    scope: str


class MatchCondition(TypedDict):
    """admissionregistration/v1 MatchCondition (CEL)."""

    name: str
    expression: str


class Webhook(TypedDict):
    """One entry of a webhook configuration."""

    name: str
    admissionReviewVersions: list[str]
    clientConfig: ClientConfig
    rules: list[Rule]
    failurePolicy: Literal["Fail", "Ignore"]
    matchPolicy: Literal["Equivalent"]
    sideEffects: Literal["None", "NoneOnDryRun"]
    timeoutSeconds: int
    namespaceSelector: Selector
    objectSelector: Selector
    matchConditions: list[MatchCondition]
    reinvocationPolicy: NotRequired[Literal["Never", "IfNeeded"]]


class WebhookConfiguration(TypedDict):
    """A Mutating- or ValidatingWebhookConfiguration."""

    apiVersion: str
    kind: Literal["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    metadata: dict[str, Any]
    webhooks: list[Webhook]


def _client_config(settings: WebhookSettings, path: str, ca_bundle: bytes) -> ClientConfig:
    config: ClientConfig = {"caBundle": base64.b64encode(ca_bundle).decode()}
    if settings.url is not None:
        config["url"] = settings.url.rstrip("/") + path
    else:
        config["service"] = {
            "name": settings.service_name,
            "namespace": settings.namespace,
            "path": path,
            "port": settings.service_port,
        }
    return config


def _entries(
    settings: WebhookSettings,
    *,
    prefix: str,
    path: str,
    operations: list[str],
    failure_policy: Literal["Fail", "Ignore"],
    ca_bundle: bytes,
    mutating: bool,
) -> list[Webhook]:
    excluded: Requirement = {
        "key": NAMESPACE_NAME_LABEL,
        "operator": "NotIn",
        "values": list(settings.all_excluded_namespaces),
    }
    opted_in: Requirement = {"key": INJECT_LABEL, "operator": "In", "values": [INJECT_ENABLED]}
    not_opted_in: Requirement = {
        "key": INJECT_LABEL,
        "operator": "NotIn",
        "values": [INJECT_ENABLED],
    }
    selectors: list[tuple[str, Selector, Selector]] = [
        # Pods that opted in themselves, in namespaces that did not.
        ("pods", {"matchExpressions": [excluded, not_opted_in]}, {"matchExpressions": [opted_in]}),
        # Every pod of a namespace that opted in as a whole.
        ("namespaces", {"matchExpressions": [excluded, opted_in]}, {}),
    ]
    entries: list[Webhook] = []
    for scope, namespace_selector, object_selector in selectors:
        entry: Webhook = {
            "name": f"{scope}.{prefix}.execguard.io",
            "admissionReviewVersions": ["v1"],
            "clientConfig": _client_config(settings, path, ca_bundle),
            "rules": [
                {
                    "operations": operations,
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods"],
                    "scope": "Namespaced",
                }
            ],
            "failurePolicy": failure_policy,
            "matchPolicy": "Equivalent",
            "sideEffects": "NoneOnDryRun",
            "timeoutSeconds": settings.timeout_seconds,
            "namespaceSelector": namespace_selector,
            "objectSelector": object_selector,
            "matchConditions": [
                {
                    "name": "not-a-mirror-pod",
                    "expression": "!has(object.metadata.annotations) || "
                    f"!('{MIRROR_ANNOTATION}' in object.metadata.annotations)",
                }
            ],
        }
        if mutating:
            entry["reinvocationPolicy"] = "Never"
        entries.append(entry)
    return entries


def render_mutating(settings: WebhookSettings, ca_bundle: bytes) -> WebhookConfiguration:
    """The injector's MutatingWebhookConfiguration."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": MUTATING_NAME, "labels": dict(MANAGED_BY)},
        "webhooks": _entries(
            settings,
            prefix="inject",
            path="/mutate",
            operations=["CREATE"],
            failure_policy=settings.failure_policy,
            ca_bundle=ca_bundle,
            mutating=True,
        ),
    }


def render_validating(settings: WebhookSettings, ca_bundle: bytes) -> WebhookConfiguration:
    """The check that selected pods carry the sidecar (ValidatingWebhookConfiguration)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": VALIDATING_NAME, "labels": dict(MANAGED_BY)},
        "webhooks": _entries(
            settings,
            prefix="check",
            path="/validate",
            operations=["CREATE", "UPDATE"],
            failure_policy=settings.validating_failure_policy,
            ca_bundle=ca_bundle,
            mutating=False,
        ),
    }


def _differs(existing: dict[str, Any], wanted: WebhookConfiguration) -> bool:
    """Compare the fields we set (the apiserver adds defaults of its own)."""
    if existing.get("metadata", {}).get("labels", {}) != wanted["metadata"]["labels"]:
        return True
    have = existing.get("webhooks") or []
    if len(have) != len(wanted["webhooks"]):
        return True
    for current, target in zip(have, wanted["webhooks"], strict=True):
        for key, value in target.items():
            if current.get(key) != value:
                return True
    return False


def apply_configuration(api_client: client.ApiClient, wanted: WebhookConfiguration) -> bool:
    """Create or replace the configuration; True if something was written."""
    api: Any = client.AdmissionregistrationV1Api(api_client)
    mutating = wanted["kind"] == "MutatingWebhookConfiguration"
    name = wanted["metadata"]["name"]
    read = (
        api.read_mutating_webhook_configuration
        if mutating
        else api.read_validating_webhook_configuration
    )
    try:
        existing = api.api_client.sanitize_for_serialization(read(name))
    except ApiException as error:
        if error.status != 404:
            raise
        create = (
            api.create_mutating_webhook_configuration
            if mutating
            else api.create_validating_webhook_configuration
        )
        create(dict(wanted))
        logger.info("created %s %s", wanted["kind"], name)
        return True
    if not _differs(existing, wanted):
        return False
    body = dict(wanted)
    body["metadata"] = {
        **wanted["metadata"],
        "resourceVersion": existing["metadata"]["resourceVersion"],
    }
    replace = (
        api.replace_mutating_webhook_configuration
        if mutating
        else api.replace_validating_webhook_configuration
    )
    replace(name, body)
    logger.info("updated %s %s", wanted["kind"], name)
    return True
