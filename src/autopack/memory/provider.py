"""The app's one ``MemoryService``, opened on first use (never at start-up: a Qdrant server that
is down must not keep the API from starting) and closed at shutdown."""

from __future__ import annotations

import threading

from autopack.errors import AutopackError
from autopack.memory.schemas import MemoryHealth
from autopack.memory.service import MemoryService
from autopack.settings import Settings


class MemoryProvider:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._service: MemoryService | None = None
        self._lock = threading.Lock()

    def get(self) -> MemoryService:
        """The service, opened now if it is not yet (raises MemoryUnavailableError or
        ConfigurationError when it cannot be)."""
        with self._lock:
            if self._service is None:
                self._service = MemoryService.from_settings(self.settings)
            return self._service

    def health(self) -> MemoryHealth:
        mode = "server" if self.settings.uses_memory_server else "embedded"
        try:
            service = self.get()
        except AutopackError as exc:
            status = "unreachable" if exc.code == "memory_unavailable" else "not_configured"
            return MemoryHealth(mode=mode, status=status, collections={})
        stats = service.stats()
        return MemoryHealth(mode=stats.mode, status=stats.status, collections=stats.collections)

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None
