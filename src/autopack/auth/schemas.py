"""Scopes, and the bodies of the API keys API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autopack.auth.models import ApiKey
from autopack.plans.models import Identifier


class Scope(StrEnum):
    """What a key may do. Hierarchical: ``admin`` includes ``write``, which includes ``read``."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, other: Scope) -> bool:
        return self.rank >= other.rank

    @classmethod
    def highest(cls, scopes: list[Any]) -> Scope | None:
        """The broadest of stored scope names (unknown names count for nothing)."""
        known = [cls(value) for value in scopes if value in cls._value2member_map_]
        return max(known, key=lambda scope: scope.rank) if known else None


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Identifier = Field(description="Unique name of the key, e.g. the client using it")
    scope: Scope = Field(default=Scope.READ, description="read, write or admin")


class ApiKeyRead(BaseModel):
    """A key as listed: never the key itself, only its first characters."""

    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="Last request made with the key (updated at most once a minute)"
    )
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> ApiKeyRead:
        # The table stores a list of scopes (room for finer ones later); a key has the broadest.
        return cls(
            name=row.name,
            prefix=row.prefix,
            scope=Scope.highest(row.scopes) or Scope.READ,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The API key. Shown once: only a hash of it is stored")
