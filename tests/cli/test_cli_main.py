"""The ``autopack`` app itself: version, help, usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from autopack import __version__
from autopack.cli.main import app
from tests.cli.support import assert_clean_failure, clean_env


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"autopack {__version__}"


def test_help_lists_the_command_groups() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for group in ("serve", "db", "runs", "plan"):
        assert group in result.stdout


def test_usage_errors_exit_2() -> None:
    assert CliRunner().invoke(app, ["no-such-command"]).exit_code == 2
    assert CliRunner().invoke(app, ["runs", "show"]).exit_code == 2
    assert CliRunner().invoke(app, ["serve", "--port", "0"]).exit_code == 2


def test_help_and_version_read_no_settings() -> None:
    # Settings are read when a command needs them, not at import or for --help.
    broken = {"AUTOPACK_PORT": "not-a-port", "DATABASE_URL": "nonsense://"}
    assert CliRunner().invoke(app, ["--help"], env=broken).exit_code == 0
    assert CliRunner().invoke(app, ["runs", "--help"], env=broken).exit_code == 0
    assert CliRunner().invoke(app, ["--version"], env=broken).exit_code == 0


def test_bad_database_url_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["runs", "list"], env=clean_env(DATABASE_URL="mysql://u@h/db"))
    assert_clean_failure(result)
    assert "supports postgresql and sqlite" in result.stderr
