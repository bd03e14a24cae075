"""``autopack serve`` is secure by default: on a non-loopback address it refuses to start while
authentication would be off, unless --insecure. uvicorn's server is replaced by a stand-in that
records what it was asked to serve (starting a real one is not what these tests are about)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn

import autopack.api.app
from autopack.cli.exposure import is_loopback
from tests.cli.support import Invoke, assert_clean_failure


class FakeServer:
    instances: list[FakeServer] = []

    def __init__(self, config: uvicorn.Config) -> None:
        self.config = config
        self.started = False
        FakeServer.instances.append(self)

    def run(self) -> None:
        self.started = True


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of each create_app call that serve made."""
    calls: list[dict[str, Any]] = []
    real = autopack.api.app.create_app

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(*args, **kwargs)

    FakeServer.instances = []
    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    monkeypatch.setattr(autopack.api.app, "create_app", recording)
    return calls


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_public_address_without_keys_is_refused(cli: Invoke, served: list[dict[str, Any]]) -> None:
    result = cli("serve", "--host", "0.0.0.0")
    assert_clean_failure(result)
    message = " ".join(result.stderr.split())
    assert "refusing to serve on 0.0.0.0" in message
    for remedy in ("autopack keys create", "AUTOPACK_API_KEY", "--insecure"):
        assert remedy in message
    assert served == [] and FakeServer.instances == []


def test_public_address_from_the_settings_is_refused_too(
    cli: Invoke, served: list[dict[str, Any]]
) -> None:
    result = cli("serve", AUTOPACK_HOST="0.0.0.0")
    assert_clean_failure(result)
    assert FakeServer.instances == []


def test_loopback_needs_no_key(cli: Invoke, served: list[dict[str, Any]]) -> None:
    result = cli("serve", "--host", "127.0.0.1")
    assert result.exit_code == 0, result.output
    assert served == [{"require_auth": False}]
    assert FakeServer.instances[0].config.host == "127.0.0.1"
    assert "WARNING" not in result.stderr


def test_public_address_with_a_key_keeps_authentication_on(
    cli: Invoke, served: list[dict[str, Any]]
) -> None:
    assert cli("keys", "create", "--name", "admin", "--scope", "admin").exit_code == 0
    result = cli("serve", "--host", "0.0.0.0", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert served == [{"require_auth": True}]
    assert FakeServer.instances[0].config.port == 8123


def test_public_address_with_the_bootstrap_key(cli: Invoke, served: list[dict[str, Any]]) -> None:
    result = cli("serve", "--host", "0.0.0.0", AUTOPACK_API_KEY="apk_from-the-environment")
    assert result.exit_code == 0, result.output
    assert served == [{"require_auth": True}]
    assert "apk_from-the-environment" not in result.output


def test_a_revoked_key_does_not_count(cli: Invoke, served: list[dict[str, Any]]) -> None:
    assert cli("keys", "create", "--name", "old").exit_code == 0
    assert cli("keys", "revoke", "old").exit_code == 0
    assert_clean_failure(cli("serve", "--host", "0.0.0.0"))


def test_insecure_serves_with_a_loud_warning(cli: Invoke, served: list[dict[str, Any]]) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0, result.output
    assert served == [{"require_auth": False}]
    warning = " ".join(result.stderr.split())
    assert "WARNING: --insecure: serving on 0.0.0.0 without requiring API keys" in warning


def test_an_unbuilt_dashboard_is_a_warning_line(
    cli: Invoke, served: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = cli("serve", AUTOPACK_DASHBOARD_DIR=str(tmp_path / "not-built"))
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "warning: The dashboard has not been built: run `npm ci && npm run build` in" in warning
    assert "AUTOPACK_DASHBOARD_DIR" in warning
    assert FakeServer.instances, "the server still starts"


def test_a_built_dashboard_is_no_warning(
    cli: Invoke, served: list[dict[str, Any]], tmp_path: Path
) -> None:
    built = tmp_path / "dist"
    built.mkdir()
    (built / "index.html").write_text("<!doctype html>\n")
    result = cli("serve", AUTOPACK_DASHBOARD_DIR=str(built))
    assert result.exit_code == 0, result.output
    assert "dashboard" not in result.stderr
