"""Running and checking Alembic migrations, and the start-up schema guardrail.

The schema comes only from the migrations in ``autopack/db/migrations`` (shipped in the package).
At start-up the API refuses a database whose schema is missing or behind, naming
``autopack db upgrade``; with ``AUTOPACK_DB_BOOTSTRAP=1`` (or the embedded SQLite default) it
migrates first — on PostgreSQL under an advisory lock, so replicas starting together take turns.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from autopack.errors import SchemaNotReadyError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Key of the session-level advisory lock serialising migrations across replicas.
MIGRATION_LOCK_KEY = 0x4150_4D47  # "APMG"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have exactly one head, found {sorted(heads)}")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_status(engine: Engine) -> SchemaStatus:
    return SchemaStatus(current=current_revision(engine), head=head_revision())


# Alembic's `context` is module-global: two threads of one process must not migrate at once.
_PROCESS_LOCK = threading.Lock()


@contextmanager
def _one_migrator(connection: Connection) -> Iterator[None]:
    """Hold the locks that make this the only migrator of the database: a process-wide lock,
    plus a PostgreSQL advisory lock or, for SQLite, an exclusive lock on a file beside it."""
    with _PROCESS_LOCK:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
            return
        database = connection.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, one migrator at a time."""
    with engine.connect() as connection, _one_migrator(connection):
        command.upgrade(alembic_config(connection), revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    with engine.connect() as connection, _one_migrator(connection):
        command.downgrade(alembic_config(connection), revision)
        connection.commit()


def pending_model_changes(engine: Engine) -> list[object]:
    """What autogenerate would put in a new migration: differences between the models and the
    database's schema (the database should be at head)."""
    from alembic.autogenerate import compare_metadata

    from autopack.db.base import include_name
    from autopack.db.models import Base

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, Base.metadata))


def new_revision(engine: Engine, message: str, *, versions_dir: Path | None = None) -> Path | None:
    """Autogenerate the next migration from the models' differences with ``engine``'s schema,
    which must be at head. Returns the new file, or None when there is nothing to migrate."""
    status = schema_status(engine)
    if not status.up_to_date:
        raise SchemaNotReadyError(
            f"the database is at revision {status.current}, not at head {status.head}: run "
            "`autopack db upgrade` first, so that the new migration holds only the new changes"
        )
    if not pending_model_changes(engine):
        return None
    head = status.head
    rev_id = f"{int(head) + 1:04d}" if head.isdigit() else None
    with engine.connect() as connection, _one_migrator(connection):
        config = alembic_config(connection)
        if versions_dir is not None:
            config.set_main_option(
                "version_locations", f"{MIGRATIONS_DIR / 'versions'}{os.pathsep}{versions_dir}"
            )
        script = command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            version_path=str(versions_dir) if versions_dir is not None else None,
        )
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not generate exactly one migration")
    return Path(script.path)


def ensure_schema(engine: Engine, *, bootstrap: bool) -> SchemaStatus:
    """The start-up guardrail. Returns the (up-to-date) status or raises SchemaNotReadyError."""
    if bootstrap:
        upgrade(engine)
    status = schema_status(engine)
    if status.up_to_date:
        return status
    known = _known_revisions()
    if status.current is None:
        problem = "the database has no Autopack schema"
    elif status.current not in known:
        raise SchemaNotReadyError(
            f"the database schema is at revision {status.current}, which this Autopack does not "
            f"know (its newest is {status.head}); upgrade Autopack, or point DATABASE_URL at "
            "the right database",
            details={"current": status.current, "head": status.head},
        )
    else:
        problem = f"the database schema is at revision {status.current}, behind {status.head}"
    raise SchemaNotReadyError(
        f"{problem}. Run `autopack db upgrade` (or set AUTOPACK_DB_BOOTSTRAP=1 for a "
        "development database) and start again",
        details={"current": status.current, "head": status.head},
    )


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}
