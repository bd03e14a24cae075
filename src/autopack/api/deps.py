"""Dependency aliases for route signatures (``DatabaseDep``, ``SettingsDep``).

A route opens its database session in its own body (``with db.session() as session:``) rather
than receiving one from a ``yield`` dependency: FastAPI would open and close such a session in
other threadpool hops than the route's, and under load the hops that would close sessions (and
give their connections back) can starve behind routes waiting for a connection. One hop per
request, with the session's whole life inside it, cannot deadlock and is faster.

The accessors are ``async def`` so that FastAPI calls them on the event loop, without a hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from autopack.db.engine import create_session_factory
from autopack.settings import Settings


@dataclass(frozen=True)
class Database:
    """The app's session factories."""

    session: sessionmaker[Session]
    # For work that only reads: on SQLite it never waits behind a writer.
    read_session: sessionmaker[Session]

    @classmethod
    def for_engine(cls, engine: Engine, *, enqueue_runs: bool = False) -> Database:
        """``enqueue_runs``: runs made runnable through the API get a worker job in the same
        transaction (AUTOPACK_EXECUTOR_BACKEND=workers)."""
        return cls(
            session=create_session_factory(engine, enqueue_runs=enqueue_runs),
            read_session=create_session_factory(engine, read_only=True),
        )


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
