"""The deployment guide's guardrail: the API refuses a missing or old schema, naming
`autopack db upgrade`; AUTOPACK_DB_BOOTSTRAP=1 migrates first (under an advisory lock on
PostgreSQL); the embedded SQLite default migrates itself."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from autopack.api.app import create_app
from autopack.db import migrate
from autopack.db.engine import create_db_engine
from autopack.errors import DatabaseUnavailableError, SchemaNotReadyError
from autopack.settings import Settings
from tests.conftest import create_pg_database, drop_pg_database, make_settings


@pytest.fixture
def empty_database_url(dialect: str, tmp_path: Path) -> object:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = create_pg_database("autopack_guard")
    yield url
    drop_pg_database(url)


def test_api_refuses_to_start_without_schema(empty_database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(empty_database_url, tmp_path))
    with pytest.raises(SchemaNotReadyError) as caught, TestClient(app):
        pass
    assert "autopack db upgrade" in str(caught.value)
    assert "no Autopack schema" in str(caught.value)
    # and it created nothing
    engine = create_db_engine(make_settings(empty_database_url, tmp_path))
    assert migrate.current_revision(engine) is None
    engine.dispose()


def test_api_refuses_a_schema_it_does_not_know(empty_database_url: str, tmp_path: Path) -> None:
    settings = make_settings(empty_database_url, tmp_path)
    engine = create_db_engine(settings)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffff'"))
    engine.dispose()
    with (
        pytest.raises(SchemaNotReadyError, match="does not know"),
        TestClient(create_app(settings)),
    ):
        pass


def test_bootstrap_migrates_then_serves(empty_database_url: str, tmp_path: Path) -> None:
    settings = make_settings(empty_database_url, tmp_path, db_bootstrap=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["ready"] is True
        assert client.get("/api/runs").status_code == 200


def test_two_replicas_bootstrapping_together_both_start(
    empty_database_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL the advisory lock makes them take turns; SQLite serialises writers."""
    settings = make_settings(empty_database_url, tmp_path, db_bootstrap=True)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            with TestClient(create_app(settings)) as client:
                outcomes.append(client.get("/ready").status_code)
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes == [200, 200]


def test_embedded_default_creates_and_migrates_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zero set-up first run: no DATABASE_URL, no bootstrap flag, an empty directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.uses_embedded_database and not settings.db_bootstrap
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "healthy"
    assert (tmp_path / ".autonomous_runs" / "autopack.db").is_file()


def test_unreachable_database_fails_start_up_with_a_clear_message(tmp_path: Path) -> None:
    settings = make_settings(
        "postgresql://nobody:secret-password@127.0.0.1:1/none",
        tmp_path,
        db_startup_timeout_seconds=0.2,
    )
    with pytest.raises(DatabaseUnavailableError) as caught, TestClient(create_app(settings)):
        pass
    message = str(caught.value)
    assert "cannot reach the database" in message
    assert "secret-password" not in message
