"""The README's demo command works and shows what execguard does."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_the_demo_shows_redaction_and_refusals_and_cleans_up_after_itself():
    # The demo starts (and stops) its own control plane.
    result = subprocess.run(
        [sys.executable, "-m", "execguard.cli.main", "dev", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "execguard-sidecar" in out
    assert "[card]" in out or "[email]" in out, "a leaked card number or e-mail was redacted"
    assert "answers leaked PII" in out
    assert "Through execguard:" in out
    assert "403 allowed models: scripted-small" in out
    assert "403 clients may not send system messages" in out
    assert "Stopped execguard, the control plane and every pod process." in out
