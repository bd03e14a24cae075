"""The bundled demo, end to end and offline: the committed cassette replayed through the real
executor (git, pytest subprocesses, the database of each dialect), and the cassette's freshness."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.demo import CASSETTE_FILE
from autopack.demo.record import record
from autopack.demo.run import run_demo
from autopack.rules.models import Rule, RuleStage
from autopack.rules.service import transition_rule
from autopack.settings import Settings
from autopack.usage.models import LlmRole
from tests.executor.support import (
    attempt_dir,
    git,
    load_record,
    repo_state,
    venv_first_on_path,
    workspace_of,
)

PHASES = ["slugify", "frequencies", "input-limit", "readme"]


def _cassette_keys(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["key"] for line in lines if line.strip()]


def test_demo_replays_offline_from_the_committed_cassette(
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A decoy `python` first on PATH: the demo must run its tests under Autopack's own
    # interpreter (its pytest is pinned, and pytest's output is part of the recorded prompts).
    decoy = tmp_path / "decoy-bin"
    decoy.mkdir()
    (decoy / "python").write_text("#!/bin/sh\necho 'decoy python' >&2\nexit 3\n")
    (decoy / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy}{os.pathsep}{os.environ['PATH']}")
    source = settings.runs_dir / "demo-project"
    started: dict[str, Any] = {}

    def on_start(run_id: str) -> None:
        # Submitted, not yet executed: the demo project is the fresh repository the run uses.
        started["run_id"] = run_id
        started["state"] = repo_state(source)

    outcome = run_demo(settings=settings, quiet=True, on_start=on_start)

    source = settings.runs_dir / "demo-project"
    run_id = started["run_id"]
    record_ = load_record(session_factory, run_id)
    assert outcome == "DONE_SUCCESS", record_.run["failure_reason"]
    assert record_.run["state"].value == "DONE_SUCCESS"
    assert list(record_.phases) == PHASES
    assert {pid: p["state"].value for pid, p in record_.phases.items()} == dict.fromkeys(
        PHASES, "COMPLETE"
    )

    # frequencies: the first attempt breaks an existing test, the retry is told and fixes it.
    first, second = record_.attempts["frequencies"]
    assert first["outcome"] == "tests_failed"
    assert "tests.test_words::test_words_strips_punctuation" in first["test_result"]["new_failures"]
    assert second["outcome"] == "success"
    fed_back = "- tests.test_words::test_words_strips_punctuation"
    retry_prompt = (attempt_dir(settings, run_id, "frequencies", 2) / "prompt.md").read_text()
    first_prompt = (attempt_dir(settings, run_id, "frequencies", 1) / "prompt.md").read_text()
    assert fed_back in retry_prompt
    assert fed_back not in first_prompt

    # input-limit: a security phase, reviewed and approved by the auditor.
    (audited,) = record_.attempts["input-limit"]
    assert audited["outcome"] == "success"
    assert audited["auditor_verdict"]["verdict"] == "approve"
    for phase_id in ("slugify", "readme"):
        assert [a["outcome"] for a in record_.attempts[phase_id]] == ["success"]

    # The ledger: every call, and the run's counters agree with it.
    roles = [call["role"] for call in record_.llm_calls]
    assert len(roles) == 6
    assert roles.count(LlmRole.BUILDER) == 5
    assert roles.count(LlmRole.AUDITOR) == 1
    ledger_tokens = sum(c["input_tokens"] + c["output_tokens"] for c in record_.llm_calls)
    assert record_.run["tokens_used"] == ledger_tokens > 0
    assert Decimal(record_.run["cost_usd"]) == sum(
        (Decimal(c["cost_usd"]) for c in record_.llm_calls), Decimal(0)
    )
    assert record_.run["tokens_used"] <= record_.run["token_cap"]
    assert record_.run["cost_usd"] <= record_.run["cost_cap_usd"]

    # Four commits on the integration branch, one per phase, each with its trailer.
    workspace = workspace_of(settings, run_id)
    branch = f"autopack/{run_id}"
    assert record_.run["integration_branch"] == branch
    base = record_.run["base_commit"]
    trailers = git(
        workspace,
        "log",
        "--reverse",
        "--format=%(trailers:key=Autopack-Phase,valueonly,separator=)",
        f"{base}..{branch}",
    ).split("\n")
    assert [t.strip() for t in trailers if t.strip()] == PHASES
    assert git(workspace, "rev-list", "--count", f"{base}..{branch}") == "4"
    assert git(workspace, "rev-parse", branch) == record_.run["head_commit"]
    assert git(workspace, "status", "--porcelain") == ""

    # The demo project itself (the run's source) is exactly as it was.
    assert repo_state(source) == started["state"]
    assert branch not in git(source, "for-each-ref", "--format=%(refname)")

    # Artifacts a person reads after the run.
    for phase_id, attempts in record_.attempts.items():
        for attempt in attempts:
            folder = attempt_dir(settings, run_id, phase_id, attempt["number"])
            for name in ("prompt.md", "reply.md", "diff.patch", "test.log"):
                assert (folder / name).is_file(), f"{folder / name} is missing"
    assert (attempt_dir(settings, run_id, "input-limit", 1) / "auditor.md").is_file()
    summary = (settings.runs_dir / run_id / "summary.md").read_text()
    assert "DONE_SUCCESS" in summary
    assert all(f"| {phase_id} | COMPLETE |" in summary for phase_id in PHASES)


def test_demo_cassette_is_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording the demo again asks exactly the requests the committed cassette answers, in the
    same order. It fails when prompts or context building change without re-recording."""
    venv_first_on_path(monkeypatch)
    fresh = tmp_path / "c.jsonl"
    record(fresh)
    committed = _cassette_keys(CASSETTE_FILE)
    regenerated = _cassette_keys(fresh)
    differ = [n for n, (a, b) in enumerate(zip(regenerated, committed, strict=False)) if a != b]
    assert regenerated == committed, (
        "the demo's requests no longer match the committed cassette "
        f"({len(regenerated)} requests now, {len(committed)} recorded; requests that differ: "
        f"{[n + 1 for n in differ] or 'the extra ones'}): prompts or context building changed. "
        "Re-record it with "
        "`python -m autopack.demo.record` and commit src/autopack/demo/cassette.jsonl"
    )


def test_the_demo_runs_again_and_again_and_learns_from_itself_without_changing_its_prompts(
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`autopack demo` reuses the embedded database (and memory directory) of the runs dir.
    Its replies are replayed by prompt, so what earlier runs left behind — fixes in memory, a
    learned rule, even one approved — must not change what it asks; yet it still teaches: its
    'frequencies' phase fails once and is fixed, so the second demo makes a candidate rule."""
    venv_first_on_path(monkeypatch)
    settings = settings.model_copy(update={"rules_activate_after_confirmations": 0})
    assert run_demo(settings=settings, quiet=True) == "DONE_SUCCESS"
    with session_factory() as session:
        assert [rule.stage for rule in session.scalars(select(Rule))] == [RuleStage.HINT]
    assert run_demo(settings=settings, quiet=True) == "DONE_SUCCESS"
    with session_factory() as session:
        rule = session.scalars(select(Rule)).one()
        assert rule.stage is RuleStage.CANDIDATE
        assert len(rule.learned_from_runs) == 2
        transition_rule(session, rule.id, RuleStage.ACTIVE, reason="approved in a test")
    # The approved rule would reach any other run's prompt; the demo's stays as recorded.
    assert run_demo(settings=settings, quiet=True) == "DONE_SUCCESS"
