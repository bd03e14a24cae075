"""Shared fixtures. Every test database is built by Alembic (never ``create_all``), and the
database-backed tests run twice: on SQLite and on the real PostgreSQL.

PostgreSQL: a throwaway database is created for the test session from the admin URL
``AUTOPACK_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped at
the end. It must be reachable: ``scripts/test`` starts the local server when it is down.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from autopack.api.app import create_app
from autopack.db import migrate
from autopack.db.engine import create_db_engine, create_session_factory
from autopack.db.models import Base
from autopack.settings import Settings

PG_ADMIN_URL = os.environ.get("AUTOPACK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DIALECTS = ["sqlite", "postgresql"]
# procrastinate's tables (migration 0005, PostgreSQL only): emptied between tests too.
QUEUE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def make_settings(database_url: str, runs_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: explicit values only, so the developer's environment cannot leak in."""
    values: dict[str, object] = {
        "database_url": database_url,
        "runs_dir": runs_dir,
        "db_startup_timeout_seconds": 0,
        "sse_poll_interval_seconds": 0.05,
        # A test that wants the API to execute runs says so (and gives it a replay cassette).
        "executor_threads": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _admin_conninfo() -> str:
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_pg_database(prefix: str = "autopack_test") -> str:
    """Create an empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.exit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}); start it (scripts/test does)",
            returncode=3,
        )
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_admin_conninfo(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template_url() -> Iterator[str]:
    """A PostgreSQL database migrated once to head for the whole session; tests get it emptied."""
    url = create_pg_database()
    engine = create_db_engine(make_settings(url, Path("/nonexistent")))
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once to head; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_db_engine(make_settings(f"sqlite:///{path}", path.parent))
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of the ``dialect`` under test."""
    if dialect == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "autopack.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_template_url")
    yield url
    _truncate_all(url)


def _truncate_all(url: str) -> None:
    names = [table.name for table in Base.metadata.sorted_tables] + list(QUEUE_TABLES)
    tables = ", ".join(f'"{name}"' for name in names)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "runs")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: a rejected request must leave these unchanged."""
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar_one()
            )
            for table in Base.metadata.sorted_tables
        }
