"""Label selectors in the models match as Kubernetes label selectors do."""

from __future__ import annotations

import pytest

from execguard.operator.api.base import LabelSelector


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "y"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]},
            {"tier": "x"},
            True,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "x"}, False),
        (
            {
                "matchLabels": {"app": "a"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            {"app": "a"},
            False,
        ),
        ({}, {"anything": "at-all"}, True),
    ],
)
def test_selector_matches_like_kubernetes(
    selector: dict[str, object], labels: dict[str, str], selected: bool
) -> None:
    assert LabelSelector.model_validate(selector).matches(labels) is selected
