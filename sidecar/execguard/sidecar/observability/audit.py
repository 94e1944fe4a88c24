"""The decision audit log: one JSON line per non-trivial decision.

Records carry the decision id, policy, phase, action and reasons, and an excerpt
that has been through the redaction rules and is cut short: never raw PII or secrets.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field


class AuditRecord(BaseModel):
    """One audited decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    decision_id: str
    policy: str
    phase: str
    action: str = Field(description="allow, deny, warn, block, redact, reask, annotate, error.")
    enforcement: str
    would_block: bool = Field(description="True when enforce mode would have refused.")
    reasons: list[str] = Field(default_factory=list)
    path: str = ""
    excerpt: str = Field(default="", description="Redacted and truncated text.")
    workload: str = ""


class AuditLog:
    """Appends records as JSON lines to a file, or to stderr."""

    def __init__(self, *, enabled: bool, path: str | None) -> None:
        self._enabled = enabled
        self._stream: TextIO | None = None
        self._owned = False
        if enabled:
            if path is None:
                self._stream = sys.stderr
            else:
                self._stream = Path(path).open("a", encoding="utf-8")  # noqa: SIM115
                self._owned = True

    def write(self, record: AuditRecord) -> None:
        """Append one record (a no-op when auditing is off)."""
        if self._stream is None:
            return
        self._stream.write(record.model_dump_json() + "\n")
        self._stream.flush()

    def close(self) -> None:
        """Close the file if this log opened one."""
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None
