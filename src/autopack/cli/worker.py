"""``autopack worker``: execute runs taken from the job queue in PostgreSQL (docs/workers.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from autopack import __version__
from autopack.cli import context
from autopack.db.engine import normalise_url
from autopack.errors import ConfigurationError
from autopack.executor.environment import build_environment, run_memory
from autopack.observability.logging import configure_logging


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            help="Runs executed at once (default: AUTOPACK_WORKER_CONCURRENCY, else 2).",
        ),
    ] = None,
) -> None:
    """Execute runs from the job queue until SIGTERM or Ctrl-C (the first waits for the runs
    in flight, up to AUTOPACK_WORKER_SHUTDOWN_SECONDS; a second exits at once).

    Needs only DATABASE_URL (PostgreSQL, migrated with `autopack db upgrade`) and access to the
    projects' repositories. Start as many as you like, on as many machines: one run is executed
    by one worker at a time, and a run whose worker died resumes on another. The API creates the
    jobs when AUTOPACK_EXECUTOR_BACKEND=workers.
    """
    from autopack.workers.process import run_worker

    settings = context.load_settings()
    if normalise_url(settings.database_url_value()).get_backend_name() != "postgresql":
        raise ConfigurationError(
            "autopack worker needs PostgreSQL: set DATABASE_URL (the embedded SQLite database "
            "executes runs inside `autopack serve` and `autopack run`)"
        )
    configure_logging(settings)
    slots = concurrency if concurrency is not None else settings.worker_concurrency
    with context.open_database(settings, wait=True) as ctx, run_memory(ctx.settings) as memory:
        env = build_environment(ctx.settings, ctx.session_factory, memory=memory)
        context.stderr().print(
            Text.assemble(
                (f"Autopack {__version__}", "bold"),
                f" worker {env.worker_id} executing up to {slots} run(s) at once, database ",
                (ctx.database, "cyan"),
            ),
            soft_wrap=True,
        )
        code = run_worker(ctx.settings, env, ctx.session_factory, slots)
    raise typer.Exit(code)
