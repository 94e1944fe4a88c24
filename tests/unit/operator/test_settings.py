"""Operator settings come from EXECGUARD_OPERATOR_* variables and flags, with exact errors."""

from __future__ import annotations

import pytest

from execguard.operator.settings import SettingsError, load_settings


def test_environment_variables_are_read_with_the_prefix_and_cast() -> None:
    settings = load_settings({"EXECGUARD_OPERATOR_METRICS_PORT": "9100"})
    assert settings.metrics_port == 9100


def test_flags_win_over_the_environment() -> None:
    settings = load_settings({"EXECGUARD_OPERATOR_METRICS_PORT": "9100"}, metrics_port=9200)
    assert settings.metrics_port == 9200


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="EXECGUARD_OPERATOR_METRICS_PORT"):
        load_settings({"EXECGUARD_OPERATOR_METRICS_PORT": "many"})


def test_renewing_slower_than_the_lease_lasts_is_refused() -> None:
    with pytest.raises(SettingsError, match="RENEW_INTERVAL_SECONDS"):
        load_settings(
            {
                "EXECGUARD_OPERATOR_LEASE_DURATION_SECONDS": "5",
                "EXECGUARD_OPERATOR_RENEW_INTERVAL_SECONDS": "6",
            }
        )
