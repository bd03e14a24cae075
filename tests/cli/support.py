"""Helpers for running the ``autopack`` CLI in-process (Typer's CliRunner).

Settings reach the CLI the way they reach a user's: through environment variables. Every other
Autopack variable is removed for the length of a command, so the developer's environment cannot
leak in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from typer.testing import CliRunner, Result

from autopack.cli.main import app
from autopack.settings import secret_env_names

Invoke = Callable[..., Result]


def clean_env(**values: str) -> dict[str, str | None]:
    """Environment overrides: every Autopack variable unset, then ``values``."""
    unset: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name.startswith("AUTOPACK_") or name in secret_env_names() or name == "FORCE_COLOR"
    }
    return {**unset, "COLUMNS": "200", **values}


def make_invoke(env: Mapping[str, str | None]) -> Invoke:
    """``invoke("runs", "list", input=None, **more_env)``: run the CLI with ``env``."""

    def invoke(*args: str, input: str | None = None, **more_env: str) -> Result:
        return CliRunner().invoke(app, list(args), input=input, env={**env, **more_env})

    return invoke


def assert_clean_failure(result: Result, code: int = 1) -> None:
    """Exited with ``code`` through the error handler: a message, no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
