"""The images the node simulator knows how to run in tests and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

from execguard.devkit.binaries import REPO_ROOT
from execguard.devkit.nodesim.images import ImageCommand, ImageTable

SCRIPTED_MODEL_IMAGE = "execguard.local/scripted-model:dev"
EXECGUARD_IMAGE = "execguard.local/execguard:dev"
# A bare interpreter: the container's args are the program (`["-c", "..."]`).
PYTHON_IMAGE = "execguard.local/python:dev"
MODEL_SERVER_SCRIPT = REPO_ROOT / "examples" / "model_server" / "scripted_model_server.py"


def default_images(python: Path | None = None) -> ImageTable:
    """Image -> command for the scripted model server, execguard itself, and Python."""
    interpreter = str(python or sys.executable)
    return {
        SCRIPTED_MODEL_IMAGE: ImageCommand(
            argv=(interpreter, str(MODEL_SERVER_SCRIPT), "--host", "{pod_ip}")
        ),
        EXECGUARD_IMAGE: ImageCommand(argv=(interpreter, "-m", "execguard.cli.main")),
        PYTHON_IMAGE: ImageCommand(argv=(interpreter,)),
    }
