"""Hot reload: re-read the mounted config when its content changes.

A file that fails to parse or compile leaves the last good config in force,
records the error for /readyz, and counts it in metrics; requests in flight keep
the runtime they started with, so nothing is dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from execguard.sidecar.config import ConfigError, parse_config
from execguard.sidecar.runtime import RuntimeHolder, Shared, build_runtime

log = logging.getLogger("execguard.sidecar.reload")


def read_config_bytes(path: Path) -> bytes:
    """The file's bytes, or a `ConfigError` naming the path."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from error


class ConfigWatcher:
    """Polls the config file and swaps in a new runtime when it changes."""

    def __init__(self, path: Path, holder: RuntimeHolder, shared: Shared, initial: bytes) -> None:
        self._path = path
        self._holder = holder
        self._shared = shared
        self._digest = hashlib.sha256(initial).hexdigest()
        self._lock = asyncio.Lock()

    async def check(self) -> bool:
        """Reload if the file changed; True when a new config was put in force."""
        async with self._lock:
            try:
                raw = read_config_bytes(self._path)
            except ConfigError as error:
                self._failed(str(error))
                return False
            digest = hashlib.sha256(raw).hexdigest()
            if digest == self._digest:
                return False
            self._digest = digest
            try:
                config = parse_config(raw)
                runtime = await build_runtime(config, self._shared, self._holder.current)
            except ConfigError as error:
                self._failed(str(error))
                return False
            await self._holder.replace(runtime)
            self._shared.metrics.config_generation.set(config.generation)
            self._shared.metrics.config_stale.set(0)
            log.info(
                "config reloaded",
                extra={"fields": {"generation": config.generation, "digest": digest[:12]}},
            )
            return True

    def _failed(self, message: str) -> None:
        self._holder.last_error = message
        self._shared.metrics.config_reload_failures.inc()
        self._shared.metrics.config_stale.set(1)
        log.error(
            "config not reloaded; keeping the last good one", extra={"fields": {"error": message}}
        )

    async def run(self, interval: float) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:
                # A bug in one reload attempt must not stop future reloads.
                log.exception("config reload crashed")
