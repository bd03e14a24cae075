"""Domain exceptions. They know nothing of HTTP: ``autopack.api.errors`` maps them in one place."""

from __future__ import annotations

from typing import Any


class AutopackError(Exception):
    """Base of every error Autopack raises on purpose. ``code`` is stable and machine readable."""

    code = "autopack_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigurationError(AutopackError):
    code = "configuration_error"


class NotFoundError(AutopackError):
    code = "not_found"


class ConflictError(AutopackError):
    """The request is well formed but clashes with what exists (a duplicate id, say)."""

    code = "conflict"


class InvalidInputError(AutopackError):
    """Input that cannot be accepted; ``details`` lists each problem with its location."""

    code = "invalid_input"


class IllegalTransitionError(ConflictError):
    """A state change the state machine does not allow (or that lost a race)."""

    code = "illegal_transition"

    def __init__(self, entity: str, entity_id: str, current: str, requested: str) -> None:
        super().__init__(
            f"{entity} {entity_id} cannot go from {current} to {requested}",
            details={"entity": entity, "id": entity_id, "current": current, "requested": requested},
        )
        self.entity = entity
        self.current = current
        self.requested = requested


class UpstreamError(AutopackError):
    """A service Autopack depends on (a model provider) did not give a usable answer; the
    request itself may be fine."""

    code = "upstream_error"


class SchemaNotReadyError(AutopackError):
    """The database schema is missing or not at the head revision of this Autopack."""

    code = "schema_not_ready"


class DatabaseUnavailableError(AutopackError):
    code = "database_unavailable"


class MemoryUnavailableError(AutopackError):
    """The vector memory (a Qdrant server, or the local-mode directory) cannot be used."""

    code = "memory_unavailable"
