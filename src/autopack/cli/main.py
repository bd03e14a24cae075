"""The ``autopack`` command: the Typer app, its command groups and its one error handler.

Every ``AutopackError`` a command raises ends the same way: ``error: <message>`` on standard error,
in red, then each located detail as ``  <loc>: <message>`` on a line of its own, and exit status 1
(usage errors keep Typer's status 2). Never a traceback for an error Autopack raises on purpose.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from autopack import __version__
from autopack.cli import context
from autopack.cli.approvals import app as approvals_app
from autopack.cli.db import app as db_app
from autopack.cli.execute import demo, promote, resume, run
from autopack.cli.keys import app as keys_app
from autopack.cli.memory import app as memory_app
from autopack.cli.models import models
from autopack.cli.plan import app as plan_app
from autopack.cli.rules import app as rules_app
from autopack.cli.runs import app as runs_app
from autopack.cli.serve import serve
from autopack.cli.worker import worker
from autopack.db.engine import database_error_reason
from autopack.errors import AutopackError, DatabaseUnavailableError
from autopack.observability.logging import command_log_level, configure_logging


def report_error(exc: AutopackError) -> None:
    """Print an AutopackError as the CLI shows every error."""
    console = context.stderr()
    console.print(Text(f"error: {exc.message}", style="bold red"), soft_wrap=True)
    for loc, message in located_details(exc.details):
        console.print(Text(f"  {loc}: {message}", style="red"), soft_wrap=True)


def located_details(details: Any) -> list[tuple[str, str]]:
    """The ``{"loc", "message"}`` entries of an error's details (other details are for machines)."""
    if not isinstance(details, list):
        return []
    return [
        (str(item["loc"]), str(item["message"]))
        for item in details
        if isinstance(item, dict) and "loc" in item and "message" in item
    ]


class AutopackGroup(TyperGroup):
    """The root group: every subcommand runs inside its ``invoke``, so this is the one place
    where errors are turned into messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AutopackError as exc:
            report_error(exc)
            raise typer.Exit(1) from None
        except OperationalError as exc:
            # The database went away in the middle of a command.
            report_error(DatabaseUnavailableError(f"database error: {database_error_reason(exc)}"))
            raise typer.Exit(1) from None


app = typer.Typer(
    name="autopack",
    cls=AutopackGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"autopack {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Autopack: a self-hosted orchestrator for autonomous, governed, budgeted coding runs.

    Settings come from the environment (AUTOPACK_*, DATABASE_URL) and .env; see
    docs/configuration.md.
    """
    _configure_logging(ctx)


def _configure_logging(ctx: typer.Context) -> None:
    """Logs of every command in AUTOPACK_LOG_FORMAT on standard error: warnings and errors
    (``autopack serve`` then logs at AUTOPACK_LOG_LEVEL). Put back as they were when the
    command ends, so that a command run in-process (tests, an embedding program) leaves logging
    as it found it."""
    try:
        settings = context.load_settings()
    except (AutopackError, ValueError):
        # The command that needs the settings reports what is wrong with them.
        return
    level = command_log_level(settings.log_level)
    ctx.call_on_close(configure_logging(settings, level=level))


app.command("serve")(serve)
app.command("worker")(worker)
app.command("run")(run)
app.command("demo")(demo)
app.command("models")(models)
app.add_typer(db_app, name="db")
runs_app.command("resume")(resume)
runs_app.command("promote")(promote)
app.add_typer(runs_app, name="runs")
app.add_typer(plan_app, name="plan")
app.add_typer(keys_app, name="keys")
app.add_typer(approvals_app, name="approvals")
app.add_typer(memory_app, name="memory")
app.add_typer(rules_app, name="rules")
