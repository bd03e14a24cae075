"""The job queue's schema is procrastinate's own, vendored for migration 0005."""

from __future__ import annotations

from pathlib import Path

from procrastinate.schema import SchemaManager
from sqlalchemy import inspect, text

from autopack.db import migrate
from autopack.db.engine import create_db_engine
from tests.conftest import make_settings

VENDORED = Path(migrate.__file__).parent / "procrastinate_schema.sql"


def test_vendored_schema_is_the_installed_procrastinate_schema() -> None:
    # A procrastinate upgrade that changes its schema must come with a new migration.
    assert VENDORED.read_text(encoding="utf-8") == SchemaManager.get_schema()


def test_postgresql_has_the_queue_and_sqlite_does_not(
    pg_template_url: str, sqlite_template: Path
) -> None:
    pg = create_db_engine(make_settings(pg_template_url, Path("/nonexistent")))
    sqlite = create_db_engine(make_settings(f"sqlite:///{sqlite_template}", Path("/nonexistent")))
    try:
        assert {"procrastinate_jobs", "procrastinate_workers"} <= set(inspect(pg).get_table_names())
        with pg.connect() as connection:
            assert connection.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'procrastinate_defer_jobs_v1'")
            )
        assert not [t for t in inspect(sqlite).get_table_names() if t.startswith("procrastinate")]
    finally:
        pg.dispose()
        sqlite.dispose()
