"""The installed ``autopack`` console script, run as a real process (the one place the CLI is
exercised outside CliRunner): migrations, the start-up guardrail and the zero set-up first run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from autopack.db import migrate
from autopack.settings import secret_env_names
from tests.conftest import create_pg_database, drop_pg_database


def autopack_script() -> str:
    beside = Path(sys.executable).parent / "autopack"
    found = str(beside) if beside.is_file() else shutil.which("autopack")
    if found is None:  # pragma: no cover - the package is not installed
        pytest.fail("the `autopack` console script is not installed (pip install -e .)")
    return found


def process_env(**values: str) -> dict[str, str]:
    """The test's environment without any Autopack setting, plus ``values``."""
    drop = set(secret_env_names()) | {"FORCE_COLOR"}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AUTOPACK_") and name not in drop
    }
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [autopack_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    path = tmp_path / "data" / "autopack.db"
    env = process_env(DATABASE_URL=f"sqlite:///{path}")

    upgraded = run(["db", "upgrade"], tmp_path, env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert path.is_file()

    current = run(["db", "current"], tmp_path, env)
    assert current.returncode == 0, current.stderr
    head = migrate.head_revision()
    assert f"current revision: {head}" in current.stdout
    assert "up to date" in current.stdout


def test_serve_refuses_an_empty_postgres_database(tmp_path: Path, empty_pg_url: str) -> None:
    env = process_env(DATABASE_URL=empty_pg_url, AUTOPACK_PORT=str(free_port()))
    started = time.monotonic()
    result = run(["serve"], tmp_path, env)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 20
    assert "autopack db upgrade" in result.stderr
    assert "error: the database has no Autopack schema" in result.stderr
    assert "Traceback" not in result.stderr
    # The password-free URL is shown in the banner; nothing was bootstrapped.
    assert "with database postgresql+psycopg://" in result.stdout


def test_serve_embedded_default_first_run(tmp_path: Path) -> None:
    port = free_port()
    runs_dir = tmp_path / "runs"
    env = process_env(AUTOPACK_RUNS_DIR=str(runs_dir))
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [autopack_script(), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert process.poll() is None, process.communicate()[1]
        assert response is not None, "the server did not answer within 30 s"
        assert response.status_code == 200, response.text
        assert response.json()["database"]["dialect"] == "sqlite"
        assert (runs_dir / "autopack.db").is_file()
    finally:
        process.terminate()
        try:
            _out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung shutdown
            process.kill()
            process.communicate()
            raise
    assert "Traceback" not in err
