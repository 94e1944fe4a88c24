"""The policy input document: what a Rego rule sees as `input`.

Versioned by `version`; any change that removes or renames a field bumps it.
Documented with an example per phase in docs/policy-input.md.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

INPUT_VERSION: Final = "v1"

Phase = Literal["request", "response", "stream"]


class RequestView(BaseModel):
    """The client request as policies see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    path: str
    headers: dict[str, str] = Field(
        default_factory=dict, description="Allow-listed headers only, names lower-cased."
    )
    body: JsonValue = Field(default=None, description="Parsed JSON body, or null.")


class ResponseView(BaseModel):
    """The model's response as policies see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: JsonValue = Field(default=None, description="Parsed JSON body, or null.")
    text: str = Field(
        default="", description="Assistant text so far (accumulated across SSE chunks)."
    )


class SessionView(BaseModel):
    """Multi-step session counters, keyed by the configured session header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    steps: int = 0
    tokens: int = 0


class WorkloadView(BaseModel):
    """Where the sidecar runs (from the downward API)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = ""
    pod: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class PolicyInput(BaseModel):
    """The whole document passed to `data.execguard.<phase>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal["v1"] = INPUT_VERSION
    phase: Phase
    request: RequestView
    response: ResponseView | None = None
    session: SessionView = Field(default_factory=SessionView)
    workload: WorkloadView = Field(default_factory=WorkloadView)
    params: dict[str, JsonValue] = Field(default_factory=dict)
