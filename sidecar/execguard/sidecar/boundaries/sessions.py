"""Step and token budgets for multi-step sessions, keyed by a header, with expiry."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from execguard.sidecar.config import SessionLimitConfig
from execguard.sidecar.errors import SessionBudgetExceeded
from execguard.sidecar.policy.input import SessionView


@dataclass
class _Session:
    steps: int
    tokens: int
    last_seen: float


class SessionTracker:
    """Counts steps and tokens per session id; sessions idle past the TTL start afresh."""

    def __init__(
        self, config: SessionLimitConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def _current(self, session_id: str) -> _Session:
        now = self._clock()
        session = self._sessions.get(session_id)
        if session is None or now - session.last_seen > self.config.ttl_seconds:
            session = _Session(steps=0, tokens=0, last_seen=now)
            self._sessions[session_id] = session
            if len(self._sessions) > self.config.max_sessions:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(session_id)
        return session

    def begin_step(self, session_id: str) -> SessionView:
        """Count one step, or raise `SessionBudgetExceeded` if the budget is used up."""
        session = self._current(session_id)
        limit = self.config
        if limit.max_steps is not None and session.steps >= limit.max_steps:
            raise SessionBudgetExceeded(
                f"session {session_id!r} has used its {limit.max_steps} steps"
            )
        if limit.max_total_tokens is not None and session.tokens >= limit.max_total_tokens:
            raise SessionBudgetExceeded(
                f"session {session_id!r} has used its {limit.max_total_tokens} tokens"
            )
        session.steps += 1
        session.last_seen = self._clock()
        return SessionView(id=session_id, steps=session.steps, tokens=session.tokens)

    def add_tokens(self, session_id: str, tokens: int) -> None:
        """Charge the tokens a finished step used (from the response's usage)."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.tokens += max(0, tokens)
            session.last_seen = self._clock()
