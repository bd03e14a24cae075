"""Dependency aliases for route signatures (``SessionDep``, ``SettingsDep``, ...).

The plain accessors are ``async def`` on purpose: FastAPI runs a sync dependency in the
threadpool, and a thread hop per dependency is a measurable share of a fast request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from autopack.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_read_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    return factory


async def _session(factory: sessionmaker[Session]) -> AsyncIterator[Session]:
    # Creating a Session does no I/O (it connects on first use, inside the route's thread);
    # closing it may (rollback, return to the pool), so that happens in the threadpool.
    session = factory()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def get_session(request: Request) -> AsyncIterator[Session]:
    async for session in _session(request.app.state.session_factory):
        yield session


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    async for session in _session(request.app.state.read_session_factory):
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
# For routes that only read: they never wait behind a writer on SQLite.
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
ReadSessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_read_session_factory)]
