"""``autopack keys create|list|revoke`` against both databases; a key made by the CLI opens the
API."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from autopack.api.app import create_app
from autopack.settings import Settings
from tests.cli.support import Invoke, assert_clean_failure


def test_create_prints_the_key_once_on_stdout(cli: Invoke) -> None:
    result = cli("keys", "create", "--name", "ci", "--scope", "write")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"apk_[A-Za-z0-9_-]{43}", key), result.stdout
    assert "ci" in result.stderr and "write" in result.stderr
    assert "cannot be shown again" in result.stderr
    assert key not in result.stderr

    listed = cli("keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "ci" in listed.stdout and "write" in listed.stdout
    assert key[:12] in listed.stdout
    assert key not in listed.stdout

    as_json = json.loads(cli("keys", "list", "--json").stdout)
    assert [(k["name"], k["scope"], k["prefix"]) for k in as_json] == [("ci", "write", key[:12])]
    assert as_json[0]["revoked_at"] is None and "key" not in as_json[0]


def test_scope_defaults_to_read_and_is_checked(cli: Invoke) -> None:
    assert cli("keys", "create", "--name", "r").exit_code == 0
    assert json.loads(cli("keys", "list", "--json").stdout)[0]["scope"] == "read"
    assert cli("keys", "create", "--name", "x", "--scope", "root").exit_code == 2
    assert cli("keys", "create", "--scope", "read").exit_code == 2  # --name is required
    assert cli("keys", "create", "--name", "ADMIN-2", "--scope", "ADMIN").exit_code == 0


def test_errors_are_messages(cli: Invoke) -> None:
    assert cli("keys", "create", "--name", "ci").exit_code == 0
    duplicate = cli("keys", "create", "--name", "ci")
    assert_clean_failure(duplicate)
    assert "already exists" in duplicate.stderr
    bad_name = cli("keys", "create", "--name", "no spaces please")
    assert_clean_failure(bad_name)
    assert "invalid key name" in bad_name.stderr
    unknown = cli("keys", "revoke", "nobody")
    assert_clean_failure(unknown)
    assert "no API key named 'nobody'" in unknown.stderr


def test_revoke(cli: Invoke) -> None:
    assert cli("keys", "list").stdout.startswith("No API keys")
    assert cli("keys", "create", "--name", "ci").exit_code == 0
    revoked = cli("keys", "revoke", "ci")
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked API key ci" in revoked.stdout
    assert json.loads(cli("keys", "list", "--json").stdout)[0]["revoked_at"] is not None
    again = cli("keys", "revoke", "ci")
    assert_clean_failure(again)
    assert "already revoked" in again.stderr


def test_a_key_from_the_cli_is_accepted_by_the_api(cli: Invoke, settings: Settings) -> None:
    key = cli("keys", "create", "--name", "ops", "--scope", "admin").stdout.strip()
    assert cli("keys", "create", "--name", "other").exit_code == 0
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/runs").status_code == 401
        listed = client.get("/api/keys", headers={"Authorization": f"Bearer {key}"})
        assert [k["name"] for k in listed.json()] == ["ops", "other"]
        assert cli("keys", "revoke", "ops").exit_code == 0
        client.app.state.gatekeeper.forget()  # another process revoked it: skip the 1 s cache
        assert client.get("/api/runs", headers={"X-API-Key": key}).status_code == 401
