"""Alembic is the only source of the schema: one head, up and down on both dialects, and no drift
between the models and the migrations."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from autopack.db import migrate
from autopack.db.base import include_name
from autopack.db.engine import create_db_engine
from autopack.db.models import Base
from tests.conftest import QUEUE_TABLES, create_pg_database, drop_pg_database, make_settings

ALL_TABLES = {
    "projects",
    "runs",
    "tiers",
    "phases",
    "attempts",
    "issues",
    "issue_occurrences",
    "llm_calls",
    "events",
    "rules",
    "approvals",
    "api_keys",
}


def _fresh_engine(dialect: str, tmp_path: Path) -> tuple[Engine, str | None]:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        return create_db_engine(make_settings(url, tmp_path)), None
    url = create_pg_database("autopack_migr")
    return create_db_engine(make_settings(url, tmp_path)), url


def test_migrations_have_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert migrate.head_revision() == script.get_current_head()


def test_every_model_table_is_created_by_migrations(dialect: str, tmp_path: Path) -> None:
    assert set(Base.metadata.tables) == ALL_TABLES
    engine, url = _fresh_engine(dialect, tmp_path)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        # On PostgreSQL the job queue's tables too (migration 0005), never on SQLite.
        queue = set(QUEUE_TABLES) if dialect == "postgresql" else set()
        assert set(inspect(engine).get_table_names()) == ALL_TABLES | queue | {"alembic_version"}
        assert migrate.schema_status(engine).up_to_date
    finally:
        engine.dispose()
        if url:
            drop_pg_database(url)


def test_upgrade_downgrade_upgrade_round_trip(dialect: str, tmp_path: Path) -> None:
    engine, url = _fresh_engine(dialect, tmp_path)
    try:
        migrate.upgrade(engine)
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
        if url:
            drop_pg_database(url)


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    """Autogenerate against a migrated database finds nothing to do."""
    with engine.connect() as connection:
        # The job queue's objects (migration 0005) are not models: excluded as in env.py.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'p.db'}", tmp_path, sqlite_busy_timeout_ms=4321
    )
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4321
    finally:
        engine.dispose()


def test_two_engines_opening_a_fresh_sqlite_file_together_both_connect(tmp_path: Path) -> None:
    """Switching a new file to WAL skips SQLite's busy handler; it must wait, not fail."""
    failures: list[BaseException] = []
    for attempt in range(40):
        settings = make_settings(f"sqlite:///{tmp_path / f'fresh{attempt}.db'}", tmp_path)
        engines = [create_db_engine(settings) for _ in range(2)]
        barrier = threading.Barrier(len(engines))

        def connect(engine: Engine, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (a INTEGER)")
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=connect, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for engine in engines:
            engine.dispose()
    assert failures == []


def test_embedded_default_lives_under_runs_dir(tmp_path: Path) -> None:
    from autopack.settings import Settings

    settings = Settings(_env_file=None, runs_dir=tmp_path / "runs")  # type: ignore[call-arg]
    assert settings.uses_embedded_database
    engine = create_db_engine(settings)
    try:
        migrate.upgrade(engine)
        assert (tmp_path / "runs" / "autopack.db").exists()
    finally:
        engine.dispose()


def test_postgres_url_uses_psycopg3_and_pool_settings(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql://u:p@db.invalid:5432/x",
        tmp_path,
        db_pool_size=7,
        db_max_overflow=3,
        db_pool_recycle_seconds=99,
    )
    engine = create_db_engine(settings)
    assert engine.url.drivername == "postgresql+psycopg"
    pool = engine.pool
    assert pool.size() == 7  # type: ignore[attr-defined]
    assert pool._max_overflow == 3  # type: ignore[attr-defined]
    assert pool._recycle == 99
    engine.dispose()


def test_unsupported_database_url_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from autopack.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="mysql"):
        create_db_engine(make_settings("mysql://u@h/db", tmp_path))
    with pytest.raises(ConfigurationError, match="not a valid database URL"):
        create_db_engine(make_settings("::not a url::", tmp_path))
