"""API keys: create, list, revoke, and find the key a request presents.

A key is ``apk_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored: a key that random cannot be guessed from its hash, so a slow password hash would add
latency and nothing else. A presented key is looked up by its hash through the unique index,
which compares hashes, never the secret itself, so the lookup leaks nothing about a stored key
through its timing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autopack.auth.models import ApiKey
from autopack.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Scope
from autopack.db.base import utcnow
from autopack.errors import ConflictError, NotFoundError

KEY_PREFIX = "apk_"
# What listings show of a key: ``apk_`` and 8 random characters (48 of its 256 bits).
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyMatch:
    """The stored key a presented key matched (its secret is not part of it)."""

    id: int
    name: str
    scope: Scope | None
    revoked: bool
    last_used_at: datetime | None


def create_key(session: Session, spec: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key; the returned body holds the key itself, which is never readable again."""
    if session.scalar(select(ApiKey.id).where(ApiKey.name == spec.name)) is not None:
        raise _name_taken(spec.name)
    key = generate_key()
    row = ApiKey(
        name=spec.name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        key_hash=hash_key(key),
        scopes=[spec.scope.value],
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise _name_taken(spec.name) from exc
    return ApiKeyCreated(**ApiKeyRead.from_row(row).model_dump(), key=key)


def _name_taken(name: str) -> ConflictError:
    return ConflictError(f"an API key named {name!r} already exists", details={"name": name})


def list_keys(session: Session) -> list[ApiKeyRead]:
    rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
    return [ApiKeyRead.from_row(row) for row in rows]


def revoke_key(session: Session, name: str) -> ApiKeyRead:
    """Revoke a key for good. Revoking a revoked key is a conflict, so that a typo in a script
    (revoking the wrong one twice) does not pass silently."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise NotFoundError(f"there is no API key named {name!r}", details={"name": name})
    if row.revoked_at is not None:
        raise ConflictError(f"the API key {name!r} was already revoked", details={"name": name})
    row.revoked_at = utcnow()
    session.commit()
    return ApiKeyRead.from_row(row)


def find_key(session: Session, key: str) -> KeyMatch | None:
    """The stored key that ``key`` is, revoked or not; None when it is no key of ours."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None:
        return None
    return KeyMatch(
        id=row.id,
        name=row.name,
        scope=Scope.highest(row.scopes),
        revoked=row.revoked_at is not None,
        last_used_at=row.last_used_at,
    )


def has_active_keys(session: Session) -> bool:
    """Whether any key is unrevoked: what turns authentication on. One EXISTS over a table of
    a handful of rows."""
    return bool(session.scalar(select(exists().where(ApiKey.revoked_at.is_(None)))))


def record_use(session: Session, key_id: int, when: datetime) -> None:
    """Set a key's ``last_used_at`` (the caller decides how often: at most once a minute)."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
    session.commit()
