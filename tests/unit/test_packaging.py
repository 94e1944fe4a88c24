"""What each image installs is enough for what it runs."""

from __future__ import annotations

import subprocess
import sys

BLOCK_OPERATOR_ONLY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('kopf', 'kubernetes', 'cryptography'):
            raise ImportError('not in the sidecar image: ' + name)
sys.meta_path.insert(0, Block())
import execguard.cli.main
import execguard.sidecar.__main__
import execguard.operator.webhook.sidecar_launch
"""


def test_the_sidecar_image_runs_its_commands_without_operator_only_packages():
    # The sidecar image installs execguard[sidecar]; the webhook injects it with
    # `execguard webhook injected-sidecar`, which must not need kopf or kubernetes.
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_OPERATOR_ONLY], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_standard_library_operator_module_is_not_shadowed():
    result = subprocess.run(
        [sys.executable, "-c", "import operator; print(operator.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "/lib/python" in result.stdout
    assert result.stdout.strip().endswith("/operator.py")
