"""Fixtures running the ``autopack`` CLI in-process against the test databases (both dialects).

The working directory is a temporary one, so no ``.env`` file can leak in either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import Invoke, clean_env, make_invoke


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "runs"


@pytest.fixture
def cli(database_url: str, runs_dir: Path) -> Invoke:
    """``cli("runs", "list")``: the CLI against the migrated test database."""
    return make_invoke(
        clean_env(
            DATABASE_URL=database_url,
            AUTOPACK_RUNS_DIR=str(runs_dir),
            AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0",
        )
    )


@pytest.fixture
def cli_no_db(runs_dir: Path) -> Invoke:
    """The CLI with no DATABASE_URL: the embedded default under ``runs_dir``."""
    return make_invoke(
        clean_env(AUTOPACK_RUNS_DIR=str(runs_dir), AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0")
    )
