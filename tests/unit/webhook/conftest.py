"""Fixtures for the webhook's unit tests."""

from __future__ import annotations

import pytest

from execguard.operator.webhook.injection import InjectionSpec
from execguard.operator.webhook.settings import WebhookSettings


@pytest.fixture
def spec() -> InjectionSpec:
    """The default injection settings."""
    return WebhookSettings().injection()
