"""``python -m autopack``: the command as the Docker image runs it (its ``/usr/local/bin/autopack``
wrapper execs this, as the image has no console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autopack import __version__
from tests.cli.test_cli_console_script import process_env


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopack", *args],
        cwd=cwd,
        env=process_env(COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help(tmp_path: Path) -> None:
    result = run_module("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Named as the command, not as `python -m autopack`.
    assert "Usage: autopack " in result.stdout, result.stdout
    for command in ("serve", "db", "runs", "keys"):
        assert command in result.stdout


def test_version(tmp_path: Path) -> None:
    result = run_module("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"autopack {__version__}"


def test_errors_end_as_the_console_scripts_do(tmp_path: Path) -> None:
    result = run_module("db", "upgrade", "--revision", "nope", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: " in result.stderr
    assert "Traceback" not in result.stderr
