"""What a CLI command needs, built once per command: Settings, the engine, a session factory.

The CLI calls the services directly (never the HTTP API of a running server). Nothing here runs at
import time: settings are read and the database is opened when a command asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from autopack.db import migrate
from autopack.db.engine import (
    create_db_engine,
    create_session_factory,
    normalise_url,
    wait_for_database,
)
from autopack.errors import ConfigurationError
from autopack.settings import Settings, env_names

# Width of output that goes to a file or a pipe rather than a terminal.
PIPE_WIDTH = 160


def stdout() -> Console:
    """A console on standard output (built per use, so it follows redirections). Piped into a
    file or another program, lines are not cut to 80 columns: tables keep their full width."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, PIPE_WIDTH)
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def load_settings() -> Settings:
    """``Settings()`` from the environment and ``.env``; a bad value is a ConfigurationError
    naming the variable, not a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            name = str(loc[0]) if loc else "(settings)"
            field = Settings.model_fields.get(name)
            variable = env_names(name, field)[0] if field is not None else name
            problems.append({"loc": variable, "message": error["msg"]})
        raise ConfigurationError(
            "the configuration is invalid (see docs/configuration.md)", details=problems
        ) from None


def database_label(settings: Settings) -> str:
    """The database in use, for humans: its URL with any password hidden."""
    return normalise_url(settings.database_url_value()).render_as_string(hide_password=True)


def _report_retry(delay: float) -> None:
    stderr().print(f"database not reachable yet; retrying in {delay:.1f} s", style="yellow")


@dataclass(frozen=True)
class CommandContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]

    @property
    def database(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        return self.session_factory()


@contextmanager
def open_database(
    settings: Settings | None = None, *, require_schema: bool = True, wait: bool = False
) -> Iterator[CommandContext]:
    """Settings' database, checked reachable, for the length of one command.

    ``require_schema``: apply the start-up guardrail the API applies (the embedded SQLite default,
    or ``AUTOPACK_DB_BOOTSTRAP=1``, migrates itself; anything else must already be at head, or
    SchemaNotReadyError names ``autopack db upgrade``). ``wait``: retry an unreachable database
    for ``AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS`` (for ``autopack db upgrade`` in a compose stack).
    """
    resolved = settings or load_settings()
    engine = create_db_engine(resolved)
    try:
        wait_for_database(engine, resolved.db_startup_timeout_seconds if wait else 0, _report_retry)
        if require_schema:
            bootstrap = resolved.db_bootstrap or resolved.uses_embedded_database
            migrate.ensure_schema(engine, bootstrap=bootstrap)
        sessions = create_session_factory(engine, enqueue_runs=resolved.uses_workers)
        yield CommandContext(resolved, engine, sessions)
    finally:
        engine.dispose()
