"""The webhook configurations are deliberate: each choice the issue names is pinned here."""

from __future__ import annotations

import base64

from execguard.operator.webhook.configuration import render_mutating, render_validating
from execguard.operator.webhook.settings import WebhookSettings, load_settings


def test_injector_is_narrow_fast_and_fails_closed_by_default():
    config = render_mutating(WebhookSettings(), b"CA")
    assert config["kind"] == "MutatingWebhookConfiguration"
    for hook in config["webhooks"]:
        assert hook["rules"][0]["operations"] == ["CREATE"]
        assert hook["rules"][0]["resources"] == ["pods"]
        assert hook["failurePolicy"] == "Fail"
        assert 1 <= hook["timeoutSeconds"] <= 3
        assert hook["sideEffects"] in ("None", "NoneOnDryRun")
        assert hook["reinvocationPolicy"] == "Never"
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"CA"


def test_system_and_own_namespaces_are_always_excluded():
    settings = load_settings({}, namespace="guard", excluded_namespaces=("batch",))
    for config in (render_mutating(settings, b"CA"), render_validating(settings, b"CA")):
        for hook in config["webhooks"]:
            excluded = hook["namespaceSelector"]["matchExpressions"][0]
            assert excluded["key"] == "kubernetes.io/metadata.name"
            assert excluded["operator"] == "NotIn"
            assert set(excluded["values"]) == {
                "kube-system",
                "kube-public",
                "kube-node-lease",
                "guard",
                "batch",
            }


def test_only_opted_in_pods_are_sent_and_no_pod_is_sent_twice():
    pods, namespaces = render_mutating(WebhookSettings(), b"CA")["webhooks"]
    assert pods["objectSelector"]["matchExpressions"] == [
        {"key": "execguard.io/inject", "operator": "In", "values": ["enabled"]}
    ]
    assert {"key": "execguard.io/inject", "operator": "NotIn", "values": ["enabled"]} in pods[
        "namespaceSelector"
    ]["matchExpressions"]
    assert {"key": "execguard.io/inject", "operator": "In", "values": ["enabled"]} in namespaces[
        "namespaceSelector"
    ]["matchExpressions"]


def test_failure_policy_and_timeout_are_settings():
    settings = load_settings({"EXECGUARD_WEBHOOK_FAILURE_POLICY": "Ignore"}, timeout_seconds=1)
    hook = render_mutating(settings, b"CA")["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 1


def test_validating_check_sees_creates_and_updates_and_defaults_to_ignore():
    hook = render_validating(WebhookSettings(), b"CA")["webhooks"][0]
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["failurePolicy"] == "Ignore"
    assert "reinvocationPolicy" not in hook


def test_service_or_url_client_config():
    service = render_mutating(WebhookSettings(), b"CA")["webhooks"][0]["clientConfig"]
    assert service["service"]["name"] == "execguard-webhook"
    assert service["service"]["path"] == "/mutate"
    url = render_mutating(WebhookSettings(url="https://127.0.0.1:9443"), b"CA")
    assert url["webhooks"][0]["clientConfig"]["url"] == "https://127.0.0.1:9443/mutate"
