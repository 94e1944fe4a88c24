"""Container environment resolution follows Kubernetes' rules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from execguard.devkit.nodesim.environment import container_env, expand
from execguard.devkit.nodesim.resources import MissingReference


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)-x", "1-x"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("plain", "plain"),
        ("$(A)$(B)", "12"),
    ],
)
def test_dollar_parenthesis_references_expand_like_kubelet(value, expected):
    assert expand(value, {"A": "1", "B": "2"}) == expected


class FakeReader:
    """Stands in for the API only where the test is about env precedence."""

    def __init__(self, config_maps):
        self.config_maps = config_maps

    def config_map(self, namespace, name, optional):
        if name not in self.config_maps:
            if optional:
                return None
            raise MissingReference(f'configmap "{name}" not found')
        return self.config_maps[name]

    def secret(self, namespace, name, optional):
        return self.config_map(namespace, name, optional)

    def key(self, kind, namespace, name, key, optional):
        data = self.config_map(namespace, name, optional) or {}
        return data.get(key)


def var(name, value=None, **value_from):
    source = SimpleNamespace(
        field_ref=None, resource_field_ref=None, config_map_key_ref=None, secret_key_ref=None
    )
    for key, ref in value_from.items():
        setattr(source, key, ref)
    return SimpleNamespace(name=name, value=value, value_from=source if value_from else None)


def pod_and_container(env, env_from=()):
    pod = SimpleNamespace(
        metadata=SimpleNamespace(
            name="p", namespace="ns", uid="u", labels={"app": "m"}, annotations={}
        ),
        spec=SimpleNamespace(node_name="n", service_account_name="default"),
    )
    container = SimpleNamespace(env=list(env), env_from=list(env_from), resources=None)
    return pod, container


def test_field_refs_and_later_vars_see_earlier_ones():
    pod, container = pod_and_container(
        [
            var("POD_IP", field_ref=SimpleNamespace(field_path="status.podIP")),
            var("APP", field_ref=SimpleNamespace(field_path="metadata.labels['app']")),
            var("URL", "http://$(POD_IP):8000/$(APP)"),
        ]
    )
    env = container_env(pod, container, "127.0.0.9", FakeReader({}), {"BASE": "b"})
    assert env["URL"] == "http://127.0.0.9:8000/m"
    assert env["BASE"] == "b"


def test_env_from_is_overridden_by_explicit_env():
    source = SimpleNamespace(
        prefix="CFG_", config_map_ref=SimpleNamespace(name="cm", optional=False), secret_ref=None
    )
    pod, container = pod_and_container([var("CFG_MODE", "explicit")], env_from=[source])
    env = container_env(
        pod, container, "127.0.0.2", FakeReader({"cm": {"MODE": "cm", "LEVEL": "3"}}), {}
    )
    assert env["CFG_MODE"] == "explicit"
    assert env["CFG_LEVEL"] == "3"


def test_a_missing_required_config_map_is_reported_not_ignored():
    source = SimpleNamespace(
        prefix=None, config_map_ref=SimpleNamespace(name="absent", optional=False), secret_ref=None
    )
    pod, container = pod_and_container([], env_from=[source])
    with pytest.raises(MissingReference, match='configmap "absent" not found'):
        container_env(pod, container, "127.0.0.2", FakeReader({}), {})


def test_unsupported_field_paths_are_refused_with_the_path():
    pod, container = pod_and_container(
        [var("X", field_ref=SimpleNamespace(field_path="spec.nonsense"))]
    )
    with pytest.raises(MissingReference, match=r"spec\.nonsense"):
        container_env(pod, container, "127.0.0.2", FakeReader({}), {})
