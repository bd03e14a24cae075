"""Engine and session factory, built from Settings on demand (never at import time)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConfigurationError, DatabaseUnavailableError
from autopack.settings import Settings

READ_ONLY_OPTION = "autopack_read_only"
# Session.info key: runs made runnable in the session get a worker job (workers.queue).
ENQUEUE_RUNS_INFO = "autopack.enqueue_runs"


def normalise_url(raw: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` (as the deployment guide writes it) uses
    psycopg 3, the only PostgreSQL driver Autopack ships."""
    try:
        url = make_url(raw)
    except Exception as exc:
        raise ConfigurationError(
            "DATABASE_URL is not a valid database URL (expected e.g. "
            "postgresql://user:password@host:5432/name or sqlite:///path/to/file.db)"
        ) from exc
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigurationError(
            f"DATABASE_URL uses {url.get_backend_name()!r}; Autopack supports postgresql and sqlite"
        )
    return url


def create_db_engine(settings: Settings) -> Engine:
    url = normalise_url(settings.database_url_value())
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={"connect_timeout": settings.db_connect_timeout_seconds},
    )


def _sqlite_engine(url: URL, settings: Settings) -> Engine:
    database = url.database
    if database and database != ":memory:":
        from pathlib import Path

        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
        },
    )
    busy_timeout = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is disabled so that BEGIN IMMEDIATE works and
        # SQLAlchemy controls transaction boundaries.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout)}")
        _switch_to_wal(cursor, busy_timeout / 1000)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A transaction that may write takes the write lock up front: a deferred one that later
        # writes fails at once with "database is locked" when another writer got in first,
        # instead of waiting. Read-only sessions stay deferred, so readers run side by side.
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any, timeout_seconds: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried within the busy timeout: on a file that is not yet in
    WAL mode, SQLite answers "database is locked" at once, without its busy handler, when another
    connection holds a lock — two processes opening a fresh database together would otherwise
    fail."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def create_session_factory(
    engine: Engine, *, read_only: bool = False, enqueue_runs: bool = False
) -> sessionmaker[Session]:
    """Sessions for the services. ``read_only`` sessions must not write: on SQLite they do not
    take the write lock, so any number of them can read while one writer writes.
    ``enqueue_runs``: a run made runnable in these sessions gets a worker job in the same
    transaction (``AUTOPACK_EXECUTOR_BACKEND=workers``, PostgreSQL; see workers.queue)."""
    if enqueue_runs and engine.dialect.name != "postgresql":
        raise ConfigurationError(
            "AUTOPACK_EXECUTOR_BACKEND=workers needs a PostgreSQL DATABASE_URL: the job queue "
            "lives there"
        )
    bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
    info = {ENQUEUE_RUNS_INFO: True} if enqueue_runs else {}
    return sessionmaker(bind=bind, expire_on_commit=False, info=info)


def database_error_reason(exc: OperationalError) -> str:
    """The driver's own first line of an error (no SQL, no SQLAlchemy boilerplate)."""
    message = str(exc.orig if exc.orig is not None else exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def wait_for_database(
    engine: Engine,
    timeout_seconds: float,
    on_retry: Callable[[float], None] | None = None,
) -> None:
    """Connect once, retrying with back-off for up to ``timeout_seconds``: in a compose stack the
    database may still be starting. DatabaseUnavailableError (password hidden) when it never
    answers; ``on_retry(delay)`` is told before each wait."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.5
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                label = engine.url.render_as_string(hide_password=True)
                raise DatabaseUnavailableError(
                    f"cannot reach the database {label}: {database_error_reason(exc)}"
                ) from None
            if on_retry is not None:
                on_retry(delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
