"""Helpers for the auth tests: keys created through the service, as `autopack keys create` does."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from autopack.auth import service
from autopack.auth.schemas import ApiKeyCreate, Scope


def create_key(factory: sessionmaker[Session], name: str, scope: Scope) -> str:
    with factory() as session:
        return service.create_key(session, ApiKeyCreate(name=name, scope=scope)).key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
