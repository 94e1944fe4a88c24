"""The decision a policy returns for one phase (`data.execguard.<phase>`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Decision(BaseModel):
    """What `data.execguard.<phase>` yields. Allowed if and only if `deny` is empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deny: frozenset[str] = Field(default_factory=frozenset, description="Reasons to block.")
    warn: frozenset[str] = Field(default_factory=frozenset, description="Reasons to warn.")
    redact: tuple[str, ...] = Field(
        default=(), description="JSON paths or regex patterns whose matches are redacted."
    )
    reask: str | None = Field(default=None, description="Hint appended when re-asking the model.")

    @property
    def allowed(self) -> bool:
        """True when no rule denied."""
        return not self.deny
