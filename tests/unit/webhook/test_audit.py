"""The audit's pure part: which running pods should carry the sidecar and do not."""

from __future__ import annotations

from webhook_builders import NAMESPACE, model_pod, policy

from execguard.operator.webhook.audit import find_missing
from execguard.operator.webhook.cluster_view import NamespaceSnapshot
from execguard.operator.webhook.mutation import mutate
from execguard.operator.webhook.patches import apply_patch

OWNED = {"ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": True}]}


def test_selected_pod_without_sidecar_is_found(spec):
    finding = find_missing(model_pod(), NAMESPACE, NamespaceSnapshot({}, (policy(),)), spec)
    assert finding is not None
    assert finding.policies == ("xp.chat",)
    assert not finding.remove


def test_injected_pod_is_fine(spec):
    pod = apply_patch(model_pod(), mutate(model_pod(), NAMESPACE, {}, [policy()], spec).patch)
    assert find_missing(pod, NAMESPACE, NamespaceSnapshot({}, (policy(),)), spec) is None


def test_warn_and_dryrun_policies_do_not_count(spec):
    for action in ("warn", "dryrun"):
        snapshot = NamespaceSnapshot({}, (policy(enforcementAction=action),))
        assert find_missing(model_pod(), NAMESPACE, snapshot, spec) is None


def test_removal_only_with_the_policy_opt_in_and_a_controller(spec):
    chat = policy()
    opted = NamespaceSnapshot({}, (chat,), frozenset({chat.key}))
    bare = find_missing(model_pod(), NAMESPACE, opted, spec)
    assert bare is not None
    assert not bare.remove, "nothing would recreate a bare pod"
    owned = find_missing(
        model_pod(metadata__ownerReferences=OWNED["ownerReferences"]), NAMESPACE, opted, spec
    )
    assert owned is not None
    assert owned.remove
