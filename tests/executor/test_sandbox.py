"""The optional bwrap sandbox of test commands: no network, nothing writable but the workspace.
Run where bwrap works (scripts/test installs it on Debian); skipped, with bwrap's reason, where
it does not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.sandbox import (
    BwrapSandbox,
    SandboxUnavailableError,
    build_sandbox,
    bwrap_problem,
)
from autopack.executor.testrun import run_tests
from autopack.runs.states import RunState
from autopack.settings import Settings
from tests.executor.support import Harness, ScriptedProvider, load_record, make_plan, make_project

PROBLEM = bwrap_problem()
needs_bwrap = pytest.mark.skipif(
    PROBLEM is not None, reason=f"bwrap cannot sandbox on this machine: {PROBLEM}"
)


def run(command: str, cwd: Path, tmp_path: Path, sandbox: BwrapSandbox | None) -> int | None:
    result = run_tests(
        command,
        cwd,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
        secret_names=[],
        timeout_s=30,
        output_limit_bytes=10_000,
        junit_dir=tmp_path / "junit",
        sandbox=sandbox,
    )
    return result.exit_code


@needs_bwrap
def test_the_sandbox_has_no_network(tmp_path: Path) -> None:
    # PostgreSQL listens on the host's loopback; the sandbox has a loopback of its own, down.
    connect = "python -c \"import socket; socket.create_connection(('127.0.0.1', 5432), 2)\""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert run(connect, workspace, tmp_path, None) == 0
    assert run(connect, workspace, tmp_path, build_sandbox("bwrap")) != 0


@needs_bwrap
def test_only_the_workspace_is_writable(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    home_file = Path.home() / f".autopack-sandbox-probe-{tmp_path.name}"
    command = (
        f"echo in > made.txt && (echo out > {outside}/escaped.txt; echo home > {home_file}; true)"
    )
    assert run(command, workspace, tmp_path, build_sandbox("bwrap")) == 0
    assert (workspace / "made.txt").read_text() == "in\n"
    assert not (outside / "escaped.txt").exists()  # /tmp is private inside the sandbox
    assert not home_file.exists()  # the rest of the filesystem is read-only


@needs_bwrap
def test_a_timeout_still_kills_what_runs_in_the_sandbox(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    result = run_tests(
        "sleep 30",
        workspace,
        env={"PATH": "/usr/bin:/bin"},
        secret_names=[],
        timeout_s=1,
        output_limit_bytes=1000,
        junit_dir=tmp_path / "junit",
        sandbox=build_sandbox("bwrap"),
    )
    assert result.timed_out and result.duration_s < 10


def test_an_unusable_sandbox_ends_the_run_before_any_model_call(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bwrap missing (simulated) fails loudly: the tests never run unsandboxed."""
    from autopack.executor import sandbox

    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    sandbox._probe.cache_clear()
    try:
        with pytest.raises(SandboxUnavailableError, match="bwrap is not installed"):
            build_sandbox("bwrap")
        provider = ScriptedProvider([])
        h = Harness(
            settings.model_copy(update={"test_sandbox": "bwrap"}), session_factory, provider
        )
        run_id, state = h.run(make_plan(), make_project(tmp_path / "project"))
    finally:
        sandbox._probe.cache_clear()
    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    assert "AUTOPACK_TEST_SANDBOX=bwrap, but bwrap is not installed" in record.run["failure_reason"]
    assert provider.calls == []
