"""The CLI fixtures of tests/cli, for ``autopack plan new``: the CLI in-process against the
migrated test database, in a temporary working directory (no ``.env`` can leak in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import Invoke, clean_env, make_invoke


@pytest.fixture
def cli(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.chdir(tmp_path)
    return make_invoke(
        clean_env(
            DATABASE_URL=database_url,
            AUTOPACK_RUNS_DIR=str(tmp_path / "runs"),
            AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0",
        )
    )
