"""The policy input document: what a Rego rule sees as `input`.

Versioned by `version`; any change that removes or renames a field bumps it.
Documented with an example per phase in docs/policy-input.md.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from execguard.sidecar.policy.phases import Phase

INPUT_VERSION: Final = "v1"


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

    # NaN and Infinity are written as bare constants (not JSON) so that the
    # engines' encoder can find and refuse them; pydantic's default would
    # quietly turn them into null. Applies to the nested views too.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")

    version: Literal["v1"] = INPUT_VERSION
    phase: Phase
    request: RequestView
    response: ResponseView | None = None
    session: SessionView = Field(default_factory=SessionView)
    workload: WorkloadView = Field(default_factory=WorkloadView)
    params: dict[str, JsonValue] = Field(default_factory=dict)
