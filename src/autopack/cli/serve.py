"""``autopack serve``: the API (and dashboard) under uvicorn, started programmatically.

The app is ``create_app(settings)``, the factory ``uvicorn autopack.main:app`` uses too; its
start-up (the lifespan) waits for the database and applies the schema guardrail. When that
start-up fails (say, a PostgreSQL database without the schema) the command prints the
guardrail's message and exits 1, instead of uvicorn's traceback.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from autopack import __version__
from autopack.cli import context
from autopack.cli.exposure import check_exposure
from autopack.errors import AutopackError
from autopack.observability.logging import configure_logging

# ASGI callables, spelt loosely: uvicorn and Starlette type them each their own way.
Receive = Any
Send = Any


class StartupGuard:
    """Wraps the app for uvicorn and keeps an AutopackError raised during start-up, so the CLI
    can report it as a message. uvicorn would otherwise log it with its traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.error: AutopackError | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.failed" and self.error is None:
                # The message is the traceback; the CLI prints the error itself.
                message = {**message, "message": ""}
            await send(message)

        try:
            await self.app(scope, receive, quiet_send)
        except AutopackError as exc:
            self.error = exc


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default: AUTOPACK_HOST, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port to bind (default: AUTOPACK_PORT, else 8000)."),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve a non-loopback address without API keys (something in front of "
            "Autopack must authenticate requests).",
        ),
    ] = False,
) -> None:
    """Run the Autopack server: the API, the dashboard and /health.

    With no DATABASE_URL it uses the embedded SQLite database under AUTOPACK_RUNS_DIR and creates
    its schema itself. Any other database must be migrated first (`autopack db upgrade`), unless
    AUTOPACK_DB_BOOTSTRAP=1.

    On an address other than loopback it refuses to start while authentication is off (no
    AUTOPACK_API_KEY, no API key in the database), unless --insecure is given.
    """
    import uvicorn

    from autopack.api.app import create_app
    from autopack.api.dashboard import not_built_message

    settings = context.load_settings()
    configure_logging(settings)
    bind_host = host if host is not None else settings.host
    bind_port = port if port is not None else settings.port
    require_auth = check_exposure(settings, bind_host, insecure=insecure)
    guard = StartupGuard(create_app(settings, require_auth=require_auth))
    context.stdout().print(
        Text.assemble(
            (f"Autopack {__version__}", "bold"),
            " serving ",
            (_url(bind_host, bind_port), "cyan"),
            " with database ",
            (context.database_label(settings), "cyan"),
        ),
        soft_wrap=True,
    )
    missing_dashboard = not_built_message(settings)
    if missing_dashboard is not None:
        # The API works without it; / answers 503 with the same message.
        context.stderr().print(
            Text(f"warning: {missing_dashboard}", style="yellow"), soft_wrap=True
        )
    config = uvicorn.Config(
        app=guard,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level,
        # Logging is ours (configure_logging above): uvicorn's records go through the same
        # handler and format, and the app writes the access lines (with the request id).
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    failed = False
    try:
        server.run()
    except SystemExit as exc:
        # uvicorn exits (status 3, or 1 when it cannot bind) when the start-up fails.
        failed = exc.code not in (0, None)
    if guard.error is not None:
        raise guard.error
    if failed or not server.started:
        raise AutopackError("the server did not start (see the log above)")
