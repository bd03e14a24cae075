"""The keys service: only hashes are stored, names are unique, revocation is for good."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from autopack.auth import service
from autopack.auth.models import ApiKey
from autopack.auth.schemas import ApiKeyCreate, Scope
from autopack.db.base import utcnow
from autopack.errors import ConflictError, NotFoundError


def test_a_created_key_is_returned_once_and_only_its_hash_is_stored(session: Session) -> None:
    created = service.create_key(session, ApiKeyCreate(name="ci", scope=Scope.WRITE))
    assert re.fullmatch(r"apk_[A-Za-z0-9_-]{43}", created.key)
    assert created.scope is Scope.WRITE
    assert created.key.startswith(created.prefix) and len(created.prefix) == 12
    row = session.scalars(select(ApiKey)).one()
    stored = [str(value) for value in (row.name, row.prefix, row.key_hash, row.scopes)]
    assert not any(created.key in value for value in stored), "the key itself was stored"
    assert row.key_hash == service.hash_key(created.key)
    assert row.scopes == ["write"]
    listed = service.list_keys(session)
    assert [key.name for key in listed] == ["ci"]
    assert "key" not in listed[0].model_dump()


def test_keys_are_random(session: Session) -> None:
    first = service.create_key(session, ApiKeyCreate(name="a"))
    second = service.create_key(session, ApiKeyCreate(name="b"))
    assert first.key != second.key
    assert first.scope is Scope.READ  # the default: least privilege


def test_names_are_unique(session: Session) -> None:
    service.create_key(session, ApiKeyCreate(name="ci"))
    with pytest.raises(ConflictError, match="'ci' already exists"):
        service.create_key(session, ApiKeyCreate(name="ci", scope=Scope.ADMIN))


def test_find_and_revoke(session: Session) -> None:
    assert not service.has_active_keys(session)
    key = service.create_key(session, ApiKeyCreate(name="ci", scope=Scope.ADMIN)).key
    assert service.has_active_keys(session)
    match = service.find_key(session, key)
    assert match is not None
    assert (match.name, match.scope, match.revoked) == ("ci", Scope.ADMIN, False)
    assert service.find_key(session, key + "x") is None
    assert service.find_key(session, "apk_" + "A" * 43) is None

    revoked = service.revoke_key(session, "ci")
    assert revoked.revoked_at is not None
    assert not service.has_active_keys(session)
    match = service.find_key(session, key)
    assert match is not None and match.revoked
    with pytest.raises(ConflictError, match="already revoked"):
        service.revoke_key(session, "ci")
    with pytest.raises(NotFoundError, match="no API key named 'nope'"):
        service.revoke_key(session, "nope")


def test_scopes_are_hierarchical() -> None:
    assert Scope.ADMIN.includes(Scope.WRITE) and Scope.ADMIN.includes(Scope.READ)
    assert Scope.WRITE.includes(Scope.READ) and not Scope.WRITE.includes(Scope.ADMIN)
    assert not Scope.READ.includes(Scope.WRITE)
    assert Scope.highest(["read", "admin", "write"]) is Scope.ADMIN
    assert Scope.highest(["superuser"]) is None


def test_record_use(session: Session) -> None:
    service.create_key(session, ApiKeyCreate(name="ci"))
    row = session.scalars(select(ApiKey)).one()
    assert row.last_used_at is None
    service.record_use(session, row.id, utcnow())
    session.expire_all()
    assert service.list_keys(session)[0].last_used_at is not None
