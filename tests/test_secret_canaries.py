"""Secrets never leave the process: a canary is planted in every secret setting (and in
credential-shaped environment variables), the demo runs end to end through the CLI on
PostgreSQL, error paths are hit through the API, and then everything written is searched:
every database row, every file under the runs directory, the logs, the CLI output and the HTTP
responses."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autopack.api.app import create_app
from autopack.db.models import Base
from autopack.settings import Settings, env_names
from tests.cli.support import clean_env, make_invoke
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database("autopack_canary")
    yield url
    drop_pg_database(url)


def canary(label: str) -> str:
    return f"canary-{label}-{secrets.token_hex(8)}"


def plant(pg_url: str, runs_dir: Path) -> tuple[dict[str, str], list[str]]:
    """The environment to run with, and every secret value planted in it."""
    env: dict[str, str] = {}
    planted: list[str] = []
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if not (isinstance(extra, dict) and extra.get("secret")):
            continue
        variable = env_names(name, field)[0]
        if variable == "DATABASE_URL":
            # Trust auth ignores the password: the URL works and its password is a canary.
            password = canary("dbpassword")
            env[variable] = make_url(pg_url).set(password=password).render_as_string(False)
            planted.append(password)
        else:
            env[variable] = canary(variable.lower())
            planted.append(env[variable])
    for variable in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "MY_SERVICE_PASSWORD"):
        env[variable] = canary(variable.lower())
        planted.append(env[variable])
    env.update(
        AUTOPACK_RUNS_DIR=str(runs_dir),
        AUTOPACK_DB_BOOTSTRAP="1",
        AUTOPACK_DB_STARTUP_TIMEOUT_SECONDS="0",
        # A live call made on an error path must fail at once, locally.
        AUTOPACK_ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        AUTOPACK_OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        AUTOPACK_LLM_MAX_RETRIES="0",
        AUTOPACK_LLM_CALL_DEADLINE_SECONDS="5",
        AUTOPACK_EXECUTOR_THREADS="0",
    )
    return env, planted


def everything_in_the_database(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(row)
                for table in Base.metadata.sorted_tables
                for row in connection.execute(text(f'SELECT * FROM "{table.name}"'))
            )
    finally:
        engine.dispose()


def everything_under(root: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("utf-8", errors="replace")
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git/objects" not in path.as_posix()
    )


def test_planted_secrets_appear_nowhere(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runs_dir = tmp_path / "runs"
    env, planted = plant(pg_url, runs_dir)
    logs = StringIO()
    handler = logging.StreamHandler(logs)
    logging.getLogger().addHandler(handler)
    written: list[str] = []
    try:
        demo = make_invoke(clean_env(**env))("demo")
        assert demo.exit_code == 0, demo.output
        written.append(demo.output)

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
        # The planted bootstrap key turns authentication on; the requests present it.
        headers = {"Authorization": f"Bearer {env['AUTOPACK_API_KEY']}"}
        with TestClient(app, headers=headers) as client:
            demo_project = runs_dir / "demo-project"
            responses = [
                client.post("/api/runs", content=b"{not json"),
                client.post("/api/runs", json={"tiers": [], "phases": []}),
                client.get("/api/runs/no-such-run"),
                client.post("/api/runs/no-such-run/cancel"),
                client.post(
                    "/api/plans/draft", json={"idea": "add a flag", "repo_path": str(demo_project)}
                ),
                client.get("/api/runs"),
                client.get("/api/usage"),
                client.get("/health"),
            ]
            assert responses[4].status_code == 502, responses[4].text  # failed, locally
            assert responses[5].status_code == 200  # authenticated
            written += [f"{r.status_code} {dict(r.headers)} {r.text}" for r in responses]
    finally:
        logging.getLogger().removeHandler(handler)
    written += [logs.getvalue(), everything_in_the_database(pg_url), everything_under(runs_dir)]

    assert "DONE_SUCCESS" in written[0]
    haystack = "\n".join(written)
    leaked = [secret for secret in planted if secret in haystack]
    assert leaked == [], f"secrets written somewhere: {leaked}"
