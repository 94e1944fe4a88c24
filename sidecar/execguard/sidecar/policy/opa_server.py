"""The `opa` engine: a real OPA server (`opa run --server`) on localhost.

Reached through `opa-python-client`'s asyncio client. Two ways to get the
policies there:

* **push** (default): `load` installs the library and the user's modules
  through the Policy API and the data document through the Data API. A
  module OPA refuses rolls the server back to the previously installed set,
  so a bad config never leaves half a policy behind.
* **bundle**: OPA was started with `--bundle` on a mounted directory (see
  `execguard.sidecar.policy.bundle`); `load` only checks that the server is
  healthy and its bundles are activated.

Every request is bounded: evaluation by `limits.eval_timeout` (cancelling
the HTTP request makes OPA cancel the evaluation), everything else by
`limits.load_timeout`. The client never retries an evaluation: an OPA that
is down or answers garbage fails fast and the caller applies failurePolicy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final, Literal, TypeVar
from urllib.parse import urlsplit

import aiohttp
from opa_client import AsyncOpaClient
from opa_client.errors import (
    ConnectionsError,
    DeletePolicyError,
    PolicyNotFoundError,
    RegoParseError,
    TypeException,
)

from execguard.sidecar.policy.decision import Decision
from execguard.sidecar.policy.errors import (
    PolicyCompileError,
    PolicyError,
    PolicyEvaluationFailed,
    PolicyUnavailable,
)
from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.library import with_library
from execguard.sidecar.policy.limits import EngineLimits, check_modules, encode_data, input_value
from execguard.sidecar.policy.phases import DECISION_PACKAGE, PHASES, Phase
from execguard.sidecar.policy.results import decision_from_value

T = TypeVar("T")

# Policy ids this engine manages on the server; anything else is left alone.
_POLICY_ID_PREFIX: Final = "execguard-managed/"


@dataclass(frozen=True)
class OpaServerSettings:
    """Where the OPA server listens and how policies reach it."""

    host: str = "127.0.0.1"
    port: int = 8181
    source: Literal["push", "bundle"] = "push"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"OPA port must be between 1 and 65535, got {self.port}")
        if self.source not in ("push", "bundle"):
            raise ValueError(f"OPA policy source must be 'push' or 'bundle', got {self.source!r}")

    @classmethod
    def from_url(cls, url: str, source: Literal["push", "bundle"] = "push") -> OpaServerSettings:
        """Settings for an `http://host:port` address (as in the sidecar config's `opa_url`)."""
        parsed = urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname or parsed.path not in ("", "/"):
            raise ValueError(f"OPA address must look like http://127.0.0.1:8181, got {url!r}")
        return cls(host=parsed.hostname, port=parsed.port or 8181, source=source)

    @property
    def url(self) -> str:
        """Base URL of the server, for messages."""
        return f"http://{self.host}:{self.port}"


def _compile_error(error: RegoParseError) -> PolicyCompileError:
    """The first of OPA's compile errors, with module (policy id) and line."""
    for detail in error.errors:
        if not isinstance(detail, dict):
            continue
        location = detail.get("location") or {}
        module = location.get("file") or None
        if isinstance(module, str) and module.startswith(_POLICY_ID_PREFIX):
            module = module.removeprefix(_POLICY_ID_PREFIX)
        row = location.get("row")
        more = len(error.errors) - 1
        suffix = f" (and {more} more)" if more > 0 else ""
        return PolicyCompileError(
            f"{detail.get('message', 'compile error')}{suffix}",
            module=module if isinstance(module, str) else None,
            line=row if isinstance(row, int) else None,
        )
    return PolicyCompileError(f"OPA refused the policy: {error.message}")


class OpaServerEngine:
    """Evaluates through an OPA server; see the module docstring."""

    def __init__(
        self,
        settings: OpaServerSettings | None = None,
        limits: EngineLimits | None = None,
        *,
        client: AsyncOpaClient | None = None,
    ) -> None:
        self._settings = settings or OpaServerSettings()
        self._limits = limits or EngineLimits()
        self._client = client or AsyncOpaClient(
            host=self._settings.host,
            port=self._settings.port,
            retries=0,
            timeout=self._limits.load_timeout,
        )
        self._stack: AsyncExitStack | None = None
        self._installed: dict[str, str] = {}
        self._loaded = False

    @property
    def limits(self) -> EngineLimits:
        """The limits this engine enforces."""
        return self._limits

    async def _session(self) -> AsyncOpaClient:
        if self._stack is None:
            stack = AsyncExitStack()
            await stack.enter_async_context(self._client)
            self._stack = stack
        return self._client

    async def _bounded(self, what: str, call: Awaitable[T], budget: float) -> T:
        """Await an OPA call, translating transport failures to `PolicyUnavailable`."""
        try:
            return await asyncio.wait_for(call, budget)
        except TimeoutError as error:
            raise PolicyUnavailable(
                f"OPA at {self._settings.url} did not answer {what} within {budget}s"
            ) from error
        except (aiohttp.ClientConnectionError, ConnectionsError) as error:
            raise PolicyUnavailable(
                f"OPA at {self._settings.url} is unreachable ({what})"
            ) from error

    async def load(self, modules: dict[str, str], data: dict[str, object]) -> None:
        """Install the modules (with the library) and data, or check the bundle is active."""
        check_modules(modules, self._limits)
        all_modules = with_library(modules)
        data_json = encode_data(data, self._limits)
        try:
            await self._load(all_modules, data_json)
        except (aiohttp.ClientResponseError, ValueError, KeyError, TypeError) as error:
            # ContentTypeError and JSONDecodeError land here: not an OPA answer.
            raise PolicyUnavailable(
                f"OPA at {self._settings.url} gave an unusable answer while loading: {error}"
            ) from error
        self._loaded = True

    async def _load(self, all_modules: dict[str, str], data_json: str) -> None:
        client = await self._session()
        timeout = self._limits.load_timeout
        healthy = await self._bounded(
            "the health check",
            client.check_health(
                query={"bundles": True} if self._settings.source == "bundle" else None
            ),
            timeout,
        )
        if not healthy:
            raise PolicyUnavailable(f"OPA at {self._settings.url} is not healthy")
        if self._settings.source == "push":
            await self._push(client, all_modules, json.loads(data_json))

    async def _push(
        self, client: AsyncOpaClient, modules: dict[str, str], data: dict[str, object]
    ) -> None:
        timeout = self._limits.load_timeout
        if not self._installed:
            await self._adopt_leftovers(client)
        previous = dict(self._installed)
        try:
            for name, source in modules.items():
                if previous.get(name) == source:
                    continue
                await self._bounded(
                    f"PUT policy {name}",
                    client.update_policy_from_string(
                        source, _POLICY_ID_PREFIX + name, rego_compat=False
                    ),
                    timeout,
                )
                self._installed[name] = source
            for name in [name for name in self._installed if name not in modules]:
                await self._delete_policy(client, name)
            await self._bounded("PUT data", client.update_or_create_data(data, ""), timeout)
        except RegoParseError as error:
            await self._restore(client, previous)
            raise _compile_error(error) from error
        except PolicyError:
            await self._restore(client, previous)
            raise
        except (aiohttp.ClientResponseError, ValueError, KeyError) as error:
            await self._restore(client, previous)
            raise PolicyUnavailable(
                f"OPA at {self._settings.url} gave an unusable answer while loading: {error}"
            ) from error

    async def _adopt_leftovers(self, client: AsyncOpaClient) -> None:
        """Take over modules an earlier engine left on the server, so they get replaced.

        A sidecar restart meets an OPA that still holds the previous policy set;
        marking those modules as installed-but-stale makes this load delete
        whatever the new set no longer has.
        """
        try:
            ids = await self._bounded(
                "GET policies", client.get_policies_list(), self._limits.load_timeout
            )
        except aiohttp.ClientResponseError as error:
            raise PolicyUnavailable(
                f"OPA at {self._settings.url} refused to list policies: {error}"
            ) from error
        for policy_id in ids:
            if isinstance(policy_id, str) and policy_id.startswith(_POLICY_ID_PREFIX):
                # An empty source never equals a real module, so it is re-pushed or deleted.
                self._installed[policy_id.removeprefix(_POLICY_ID_PREFIX)] = ""

    async def _delete_policy(self, client: AsyncOpaClient, name: str) -> None:
        # Already gone is what we wanted.
        with contextlib.suppress(DeletePolicyError, PolicyNotFoundError):
            await self._bounded(
                f"DELETE policy {name}",
                client.delete_policy(_POLICY_ID_PREFIX + name),
                self._limits.load_timeout,
            )
        self._installed.pop(name, None)

    async def _restore(self, client: AsyncOpaClient, previous: dict[str, str]) -> None:
        """Best effort: put the last good module set back after a refused load."""
        try:
            # Leftovers adopted from an earlier engine have no known source: drop them.
            stale = [name for name, source in previous.items() if not source]
            for name in [name for name in self._installed if name not in previous] + stale:
                await self._delete_policy(client, name)
            for name, source in previous.items():
                if source and self._installed.get(name) != source:
                    await self._bounded(
                        f"PUT policy {name}",
                        client.update_policy_from_string(
                            source, _POLICY_ID_PREFIX + name, rego_compat=False
                        ),
                        self._limits.load_timeout,
                    )
                    self._installed[name] = source
        except (PolicyError, RegoParseError, TypeException, aiohttp.ClientError):
            # The server is now in an unknown state; the next load pushes everything.
            self._installed.clear()

    async def evaluate(self, phase: Phase, document: PolicyInput) -> Decision:
        """POST the input to `/v1/data/execguard/lib/decision/<phase>` within `eval_timeout`."""
        if phase not in PHASES:
            raise PolicyEvaluationFailed(f"unknown phase {phase!r}; expected one of {PHASES}")
        if not self._loaded:
            raise PolicyUnavailable("no policy is loaded into the OPA engine")
        value = input_value(document)
        client = await self._session()
        timeout = self._limits.eval_timeout
        try:
            body = await asyncio.wait_for(
                client.query_rule(input_data=value, package_path=DECISION_PACKAGE, rule_name=phase),
                timeout,
            )
        except TimeoutError as error:
            raise PolicyEvaluationFailed(
                f"data.execguard.{phase} did not finish within {timeout}s on OPA"
            ) from error
        except (aiohttp.ContentTypeError, json.JSONDecodeError) as error:
            raise PolicyEvaluationFailed(
                f"OPA answered data.execguard.{phase} with something that is not JSON"
            ) from error
        except aiohttp.ClientResponseError as error:
            raise PolicyEvaluationFailed(
                f"OPA failed to evaluate data.execguard.{phase}: "
                f"HTTP {error.status} {error.message}"
            ) from error
        except (aiohttp.ClientConnectionError, ConnectionsError) as error:
            raise PolicyUnavailable(f"OPA at {self._settings.url} is unreachable") from error
        except ValueError as error:
            raise PolicyEvaluationFailed(
                f"OPA answered data.execguard.{phase} with something that is not JSON"
            ) from error
        if not isinstance(body, dict):
            raise PolicyEvaluationFailed(
                f"OPA answered data.execguard.{phase} with a non-object JSON document"
            )
        # No result means the library's decision rule is missing (a bundle without it).
        return decision_from_value(phase, body.get("result"))

    async def close(self) -> None:
        """Close the HTTP session (the server keeps its policies)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
