"""``autopack keys``: create, list and revoke API keys, through the auth service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table
from rich.text import Text

from autopack.auth import service
from autopack.auth.schemas import ApiKeyCreate, ApiKeyRead, Scope
from autopack.cli import context
from autopack.errors import InvalidInputError

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

_KEY_LIST = TypeAdapter(list[ApiKeyRead])


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", help="Unique name of the key, e.g. the client using it.")
    ],
    scope: Annotated[
        Scope,
        typer.Option(
            "--scope",
            case_sensitive=False,
            help="read (GET), write (read + changes) or admin (write + key management).",
        ),
    ] = Scope.READ,
) -> None:
    """Create an API key and print it, once: only its hash is stored.

    The key alone goes to standard output (so that `KEY=$(autopack keys create ...)` works);
    the notice goes to standard error. The first key turns authentication on.
    """
    try:
        spec = ApiKeyCreate(name=name, scope=scope)
    except ValidationError as exc:
        raise InvalidInputError(
            f"invalid key name {name!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128, starting with a letter or digit)"
        ) from exc
    with context.open_database() as ctx, ctx.session() as session:
        created = service.create_key(session, spec)
    typer.echo(created.key)
    context.stderr().print(
        Text.assemble(
            "Created API key ",
            (created.name, "bold"),
            f" (scope {created.scope.value}). ",
            ("Store it now: it cannot be shown again.", "yellow"),
        ),
        soft_wrap=True,
    )


@app.command("list")
def list_keys(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's schema) instead of a table.")
    ] = False,
) -> None:
    """List the API keys (name, prefix, scope, created, last used, revoked); never the keys."""
    with context.open_database() as ctx, ctx.session() as session:
        keys = service.list_keys(session)
    if as_json:
        typer.echo(_KEY_LIST.dump_json(keys, indent=2).decode())
        return
    out = context.stdout()
    if not keys:
        out.print("No API keys: authentication is off unless AUTOPACK_API_KEY is set.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "PREFIX", "SCOPE", "CREATED", "LAST USED", "REVOKED"):
        table.add_column(column, no_wrap=True)
    for key in keys:
        style = "dim" if key.revoked_at is not None else ""
        table.add_row(
            Text(key.name),
            Text(f"{key.prefix}…"),
            key.scope.value,
            _time(key.created_at),
            _time(key.last_used_at),
            _time(key.revoked_at),
            style=style,
        )
    out.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke an API key for good. Servers stop accepting it within about a second."""
    with context.open_database() as ctx, ctx.session() as session:
        revoked = service.revoke_key(session, name)
    context.stdout().print(Text.assemble("Revoked API key ", (revoked.name, "bold"), "."))
