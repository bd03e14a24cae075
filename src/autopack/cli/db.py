"""``autopack db``: the schema of Settings' database, through Alembic (the production path)."""

from __future__ import annotations

from typing import Annotated

import typer
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from rich.text import Text

from autopack.cli import context
from autopack.db import migrate
from autopack.errors import InvalidInputError

app = typer.Typer(
    help="Database schema migrations (Alembic) for the database in DATABASE_URL.",
    no_args_is_help=True,
)


def _is_known(revision: str) -> bool:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return any(rev.revision == revision for rev in script.walk_revisions())


def _revision_label(revision: str | None) -> str:
    return revision or "(none: no Autopack schema)"


@app.command("upgrade")
def upgrade(
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="Revision to upgrade to.")
    ] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the newest). Safe to run again."""
    with context.open_database(require_schema=False, wait=True) as ctx:
        before = migrate.current_revision(ctx.engine)
        try:
            migrate.upgrade(ctx.engine, revision)
        except CommandError as exc:
            raise InvalidInputError(f"cannot upgrade to {revision!r}: {exc}") from None
        after = migrate.current_revision(ctx.engine)
        out = context.stdout()
        if before == after:
            message = f"{ctx.database}: already at revision {_revision_label(after)}"
        elif before is None:
            message = f"{ctx.database}: created the schema at revision {after}"
        else:
            message = f"{ctx.database}: upgraded from revision {before} to {after}"
        head = " (head)" if after == migrate.head_revision() else ""
        out.print(Text(message + head, style="green"), soft_wrap=True)


@app.command("downgrade")
def downgrade(
    revision: Annotated[
        str,
        typer.Argument(help="Revision to downgrade to (`base` removes the whole schema)."),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Revert the migrations down to REVISION. Downgrades can delete data: asks first."""
    with context.open_database(require_schema=False) as ctx:
        before = migrate.current_revision(ctx.engine)
        if not yes:
            typer.confirm(
                f"Downgrade {ctx.database} from {_revision_label(before)} to {revision}? "
                "This can delete data",
                abort=True,
            )
        try:
            migrate.downgrade(ctx.engine, revision)
        except CommandError as exc:
            raise InvalidInputError(f"cannot downgrade to {revision!r}: {exc}") from None
        after = migrate.current_revision(ctx.engine)
        context.stdout().print(
            Text(
                f"{ctx.database}: downgraded from {_revision_label(before)} "
                f"to {_revision_label(after)}",
                style="yellow",
            ),
            soft_wrap=True,
        )


@app.command("current")
def current() -> None:
    """Show the database's schema revision, the newest this Autopack knows, and whether the
    database is up to date. Changes nothing."""
    with context.open_database(require_schema=False) as ctx:
        status = migrate.schema_status(ctx.engine)
        out = context.stdout()
        out.print(Text(f"database:         {ctx.database}"), soft_wrap=True)
        out.print(Text(f"current revision: {_revision_label(status.current)}"), soft_wrap=True)
        out.print(Text(f"head revision:    {status.head}"), soft_wrap=True)
        if status.up_to_date:
            verdict = Text("status:           up to date", style="green")
        elif status.current is not None and not _is_known(status.current):
            verdict = Text(
                "status:           unknown revision (a newer Autopack migrated this database)",
                style="red",
            )
        else:
            verdict = Text("status:           behind; run `autopack db upgrade`", style="yellow")
        out.print(verdict, soft_wrap=True)


@app.command("revision")
def revision(
    message: Annotated[
        str, typer.Option("--message", "-m", help="What the migration changes, in a few words.")
    ],
) -> None:
    """For developers: autogenerate the next migration from the differences between the models
    and the database's schema (which must be at head). Writes nothing when they agree."""
    with context.open_database(require_schema=False) as ctx:
        path = migrate.new_revision(ctx.engine, message)
        out = context.stdout()
        if path is None:
            out.print(
                Text("the models and the migrations agree: nothing to generate", style="green")
            )
            return
        out.print(Text(f"wrote {path}; read it before committing", style="green"), soft_wrap=True)
