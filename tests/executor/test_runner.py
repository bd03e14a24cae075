"""The whole executor, integrated: real git repositories made in tmp_path, real test commands in
subprocesses, the real database of each dialect. Only the model is scripted, and it speaks the
real wire format (``support.ScriptedProvider``)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from autopack.executor.service import execute
from autopack.issues.models import IssueSource
from autopack.llm.pricing import cost_usd, prompt_tokens_upper_bound, quantize_usd
from autopack.llm.replay import ReplayProvider
from autopack.runs.service import cancel_run
from autopack.runs.states import PHASE_ACTIVE_STATES, PhaseState, RunState
from autopack.settings import Settings
from tests.conftest import make_settings
from tests.executor.support import (
    BREAKING_REPLY,
    CALC_PY,
    GOOD_REPLY,
    PROJECT_FILES,
    Harness,
    RunRecord,
    ScriptedProvider,
    attempt_dir,
    git,
    live_group_members,
    load_record,
    make_plan,
    make_project,
    phase_spec,
    process_alive,
    prompt_text,
    repo_state,
    search_replace,
    venv_first_on_path,
    whole_file,
    workspace_of,
)

SUB_LINE = "def sub(a, b):"


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def harness(
    settings: Settings, sessions: sessionmaker[Session], *replies: Any, usage: str = "plausible"
) -> tuple[Harness, ScriptedProvider]:
    provider = ScriptedProvider(replies, usage=usage)
    return Harness(settings, sessions, provider), provider


def assert_within_caps(record: RunRecord) -> None:
    run = record.run
    if run["token_cap"] is not None:
        assert run["tokens_used"] <= run["token_cap"]
    if run["cost_cap_usd"] is not None:
        assert Decimal(run["cost_usd"]) <= Decimal(run["cost_cap_usd"])
    # The counters are the ledger's sums, whatever the path.
    assert run["tokens_used"] == sum(
        c["input_tokens"] + c["output_tokens"] for c in record.llm_calls
    )
    assert Decimal(run["cost_usd"]) == sum(
        (Decimal(c["cost_usd"]) for c in record.llm_calls), Decimal(0)
    )


# --- the user's checkout ------------------------------------------------------------------------


def test_user_checkout_is_untouched_by_a_successful_run(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    # A stash too, so that "stash unchanged" means something.
    (project / "calc.py").write_text(CALC_PY + "# stashed\n")
    git(project, "stash", "-q")
    before = repo_state(project)
    h, provider = harness(settings, session_factory, GOOD_REPLY)

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    assert repo_state(project) == before
    branch = f"refs/heads/autopack/{run_id}"
    assert branch not in git(project, "for-each-ref", "--format=%(refname)")
    workspace = workspace_of(settings, run_id)
    assert branch in git(workspace, "for-each-ref", "--format=%(refname)")
    assert SUB_LINE in git(workspace, "show", f"autopack/{run_id}:calc.py")
    assert git(workspace, "rev-parse", f"autopack/{run_id}") == record.run["head_commit"]
    assert record.phase()["state"] is PhaseState.COMPLETE
    assert len(provider.calls) == 1


def test_cache_tokens_reach_the_ledger_and_are_billed_at_their_prices(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    h, _ = harness(settings, session_factory, GOOD_REPLY, usage="cached")

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    (call,) = record.llm_calls
    assert call["cache_read_tokens"] > 0 and call["cache_write_tokens"] == 100
    assert call["input_tokens"] > call["cache_read_tokens"] + call["cache_write_tokens"]
    spec = h.env.router.spec(call["model"])
    uncached = call["input_tokens"] - call["cache_read_tokens"] - call["cache_write_tokens"]
    assert call["cost_usd"] == quantize_usd(
        cost_usd(
            spec,
            input_tokens=uncached,
            output_tokens=call["output_tokens"],
            cache_read_tokens=call["cache_read_tokens"],
            cache_write_tokens=call["cache_write_tokens"],
        )
    )


def test_dirty_user_tree_runs_from_head_and_lists_what_it_ignored(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    (project / "calc.py").write_text(CALC_PY + "\nDIRTY = 'unstaged edit'\n")
    (project / "README.md").write_text("# calc, staged edit\n")
    git(project, "add", "README.md")
    (project / "notes.txt").write_text("untracked\n")
    (project / "scratch").mkdir()
    (project / "scratch" / "draft.py").write_text("untracked too\n")
    before = repo_state(project)
    h, _ = harness(settings, session_factory, GOOD_REPLY)

    run_id, state = h.run(make_plan(), project)

    assert state is RunState.DONE_SUCCESS
    workspace = workspace_of(settings, run_id)
    assert "DIRTY" not in (workspace / "calc.py").read_text()
    assert SUB_LINE in (workspace / "calc.py").read_text()
    assert (workspace / "README.md").read_text() == PROJECT_FILES["README.md"]
    assert not (workspace / "notes.txt").exists()
    assert not (workspace / "scratch").exists()
    tree = git(workspace, "ls-tree", "-r", "--name-only", f"autopack/{run_id}").splitlines()
    assert "notes.txt" not in tree and "scratch/draft.py" not in tree
    (ready,) = load_record(session_factory, run_id).events_of("workspace.ready")
    assert sorted(ready["payload"]["uncommitted_changes_ignored"]) == [
        "README.md",
        "calc.py",
        "notes.txt",
        "scratch/draft.py",
    ]
    assert repo_state(project) == before  # still dirty, exactly as it was


# --- budgets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "caps", [{"token_cap": 500}, {"cost_cap_usd": "0.000100"}], ids=["tokens", "cost"]
)
def test_budget_too_small_for_the_first_call_makes_no_call(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    caps: dict[str, Any],
) -> None:
    h, provider = harness(settings, session_factory, GOOD_REPLY)

    run_id, state = h.run(make_plan(run=caps), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_BUDGET_EXHAUSTED
    assert provider.calls == []
    assert record.llm_calls == []
    assert record.run["tokens_used"] == 0 and Decimal(record.run["cost_usd"]) == 0
    assert "budget exhausted" in record.run["failure_reason"]
    assert record.phase()["state"] is PhaseState.FAILED
    (attempt,) = record.attempts["p1"]
    assert attempt["outcome"] == "budget_exhausted"
    assert [i["source"] for i in record.issues] == [IssueSource.BUDGET]
    assert_within_caps(record)


# A first prompt of this small project is about 4,000 bytes (its byte count bounds its tokens);
# these caps leave room for it plus between 1,024 (the floor) and 8,192 (the builder's default)
# output tokens, and not for a second call of the same size.
ONE_CALL_CAPS: dict[str, dict[str, Any]] = {
    "tokens": {"token_cap": 9_000},
    "cost": {"cost_cap_usd": "0.004500"},
}


@pytest.mark.parametrize("dimension", ["tokens", "cost"])
def test_budget_for_exactly_one_call_refuses_the_next(
    settings: Settings, session_factory: sessionmaker[Session], project: Path, dimension: str
) -> None:
    # The model spends everything reserved for it (the prompt's whole bound, all of max_tokens),
    # and its reply cannot be applied, so the phase wants a second call.
    missing = search_replace("calc.py", "def div(a, b):\n", "def div(a, b):\n    return a / b\n")
    h, provider = harness(settings, session_factory, missing, GOOD_REPLY, usage="worst")

    run_id, state = h.run(make_plan(run=ONE_CALL_CAPS[dimension]), project)

    record = load_record(session_factory, run_id)
    assert len(provider.calls) == 1, "exactly one call fits"
    first = provider.calls[0].request
    bound = prompt_tokens_upper_bound(first.messages)
    if dimension == "tokens":
        cap = ONE_CALL_CAPS["tokens"]["token_cap"]
        assert 1024 <= cap - bound < 8192, f"re-tune the cap: the first prompt is {bound} tokens"
        # max_tokens was lowered to what fits, and the worst case was then spent exactly.
        assert first.max_tokens == cap - bound
        assert record.run["tokens_used"] == cap
    assert state is RunState.DONE_FAILED_BUDGET_EXHAUSTED, record.run["failure_reason"]
    assert [a["outcome"] for a in record.attempts["p1"]] == ["edit_error", "budget_exhausted"]
    assert len(record.llm_calls) == 1
    assert "budget exhausted" in record.run["failure_reason"]
    assert record.phase()["state"] is PhaseState.FAILED
    assert_within_caps(record)


# --- the model's replies ------------------------------------------------------------------------


def test_replay_miss_ends_the_run_naming_phase_and_attempt(
    settings: Settings, session_factory: sessionmaker[Session], project: Path, tmp_path: Path
) -> None:
    cassette = tmp_path / "empty.jsonl"
    cassette.write_text("")
    h = Harness(settings, session_factory, ReplayProvider(cassette))

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    reason = record.run["failure_reason"]
    assert "phase p1" in reason and "attempt 1" in reason, reason
    assert str(cassette) in reason
    assert record.phase()["state"] is PhaseState.FAILED
    (call,) = record.llm_calls
    assert call["outcome"] == "error" and call["input_tokens"] == call["output_tokens"] == 0
    assert_within_caps(record)


def test_edits_that_do_not_apply_are_fed_back_and_retried(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    missing = search_replace("calc.py", "def div(a, b):\n", "def div(a, b):\n    return a / b\n")
    h, provider = harness(settings, session_factory, missing, GOOD_REPLY)

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    failed, passed = record.attempts["p1"]
    assert failed["outcome"] == "edit_error"
    assert "calc.py" in failed["failure_reason"]
    assert passed["outcome"] == "success"
    retry = prompt_text(provider.requests[1])
    assert failed["failure_reason"] in retry
    assert failed["failure_reason"] not in prompt_text(provider.requests[0])
    assert (
        failed["failure_reason"]
        in (attempt_dir(settings, run_id, "p1", 2) / "prompt.md").read_text()
    )
    assert [i["source"] for i in record.issues] == [IssueSource.BUILDER]
    assert SUB_LINE in (workspace_of(settings, run_id) / "calc.py").read_text()
    assert_within_caps(record)


# --- governance ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_path",
    [
        "notes/other.py",
        pytest.param(".git/config"),
        pytest.param("../escape"),
        pytest.param("ABSOLUTE"),
    ],
    ids=["outside-scope", "dot-git", "dot-dot", "absolute"],
)
def test_governance_refuses_a_write_records_an_issue_and_retries(
    settings: Settings,
    session_factory: sessionmaker[Session],
    project: Path,
    tmp_path: Path,
    bad_path: str,
) -> None:
    marker = "# autopack-governance-canary\n"
    outside = tmp_path / "absolute-target.txt"
    path = str(outside) if bad_path == "ABSOLUTE" else bad_path
    bad_reply = whole_file(path, marker) + "\n" + GOOD_REPLY.split("\n\n", 1)[1]
    h, provider = harness(settings, session_factory, bad_reply, GOOD_REPLY)

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    refused, passed = record.attempts["p1"]
    assert refused["outcome"] == "governance"
    assert refused["governance_verdict"]["ok"] is False
    assert passed["outcome"] == "success"
    (issue,) = record.issues
    assert issue["source"] is IssueSource.GOVERNANCE
    assert issue["issue_key"].startswith("governance:")
    # Nothing of the refused attempt was written: not even its allowed part (calc.py).
    assert not (attempt_dir(settings, run_id, "p1", 1) / "diff.patch").exists()
    assert "Governance violations" in prompt_text(provider.requests[1])
    workspace = workspace_of(settings, run_id)
    replies_dir = settings.runs_dir.resolve() / run_id / "phases"  # reply.md quotes it
    for file in tmp_path.rglob("*"):
        if file.is_file() and not file.is_relative_to(replies_dir) and ".db" not in file.name:
            assert marker.encode() not in file.read_bytes(), f"written to {file}"
    assert not outside.exists()
    assert not (workspace.parent / "escape").exists()
    tree = git(workspace, "ls-tree", "-r", "--name-only", f"autopack/{run_id}").splitlines()
    assert "notes/other.py" not in tree
    assert_within_caps(record)


def test_a_repeated_violation_with_no_model_left_ends_policy_violation(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    # complexity high: a one-model builder chain, so the repeat is a loop that ends the phase.
    bad = whole_file("notes/other.py", "x = 1\n")
    h, provider = harness(settings, session_factory, bad, bad, bad)

    run_id, state = h.run(make_plan(phase_spec(complexity="high")), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_POLICY_VIOLATION, record.run["failure_reason"]
    assert [a["outcome"] for a in record.attempts["p1"]] == ["governance"] * 2
    assert len(provider.calls) == 2
    assert "loop detected" in record.run["failure_reason"]
    assert "notes/other.py" in record.run["failure_reason"]
    assert record.phase()["state"] is PhaseState.FAILED
    (issue,) = record.issues
    assert issue["source"] is IssueSource.GOVERNANCE and issue["occurrence_count"] == 2
    assert git(workspace_of(settings, run_id), "status", "--porcelain") == ""
    assert not (workspace_of(settings, run_id) / "notes").exists()


@pytest.mark.parametrize("violations", ["same", "different"])
def test_every_attempt_violating_ends_policy_violation(
    settings: Settings, session_factory: sessionmaker[Session], project: Path, violations: str
) -> None:
    replies = [
        whole_file("notes/other.py" if violations == "same" else f"notes/other{n}.py", "x\n")
        for n in range(3)
    ]
    h, _ = harness(settings, session_factory, *replies)

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert [a["outcome"] for a in record.attempts["p1"]] == ["governance"] * 3
    assert record.phase()["state"] is PhaseState.FAILED
    assert state is RunState.DONE_FAILED_POLICY_VIOLATION, record.run["failure_reason"]


# --- the failure path ---------------------------------------------------------------------------


def test_a_reply_that_breaks_a_test_three_times_fails_the_phase(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    h, provider = harness(settings, session_factory, BREAKING_REPLY, BREAKING_REPLY, BREAKING_REPLY)

    run_id, state = h.run(make_plan(), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    attempts = record.attempts["p1"]
    # Loop detection sees the repeat at attempt 2 but the low-complexity chain has models left,
    # so it escalates instead of stopping: all three attempts run.
    assert [a["outcome"] for a in attempts] == ["tests_failed"] * 3
    assert len(provider.calls) == 3
    assert all(a["test_result"]["new_failures"] == ["tests.test_calc::test_add"] for a in attempts)
    phase = record.phase()
    assert phase["state"] is PhaseState.FAILED
    reason = record.run["failure_reason"]
    assert "phase p1 failed: no attempt passed in 3" in reason
    assert "tests.test_calc::test_add" in reason
    # The workspace is back at the last good commit (the base: nothing was committed).
    workspace = workspace_of(settings, run_id)
    assert git(workspace, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(workspace, "rev-parse", "HEAD") == record.run["base_commit"]
    assert record.run["head_commit"] == record.run["base_commit"]
    assert (workspace / "calc.py").read_text() == CALC_PY
    # One issue (one signature), seen three times, each occurrence with its attempt.
    (issue,) = record.issues
    assert issue["source"] is IssueSource.TESTS
    assert issue["issue_key"] == f"tests:{attempts[0]['failure_signature']}"
    assert issue["occurrence_count"] == 3
    # The failure was fed back each time.
    for request in provider.requests[1:]:
        assert "- tests.test_calc::test_add" in prompt_text(request)
    assert_within_caps(record)


def test_loop_detection_stops_early_when_no_model_is_left(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    # complexity high: the builder chain is one model, so a repeated failure ends the phase.
    h, provider = harness(settings, session_factory, BREAKING_REPLY, BREAKING_REPLY, BREAKING_REPLY)

    run_id, state = h.run(make_plan(phase_spec(complexity="high")), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW
    assert [a["outcome"] for a in record.attempts["p1"]] == ["tests_failed"] * 2
    assert len(provider.calls) == 2
    assert "the same failure repeated (loop detected)" in record.run["failure_reason"]
    assert "tests.test_calc::test_add" in record.run["failure_reason"]
    assert git(workspace_of(settings, run_id), "status", "--porcelain") == ""
    assert record.issues[0]["occurrence_count"] == 2


def test_escalation_moves_one_step_along_the_chain(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    h, provider = harness(settings, session_factory, BREAKING_REPLY, BREAKING_REPLY, BREAKING_REPLY)

    h.run(make_plan(), project)

    assert [r.model for r in provider.requests] == [
        "claude-haiku-5-5",
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
    ]


# --- the environment ----------------------------------------------------------------------------


def test_a_test_command_that_does_not_exist_ends_the_run(
    settings: Settings, session_factory: sessionmaker[Session], project: Path
) -> None:
    h, provider = harness(settings, session_factory, GOOD_REPLY)
    plan = make_plan(phase_spec(scope={"test_cmd": "nonexistent-cmd-xyz"}))

    run_id, state = h.run(plan, project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    reason = record.run["failure_reason"]
    assert "nonexistent-cmd-xyz" in reason and "not found" in reason, reason
    assert "p1" in reason
    assert record.phase()["state"] is PhaseState.FAILED
    # The baseline runs before the first builder call: no model call is paid for.
    assert provider.calls == []
    assert git(workspace_of(settings, run_id), "rev-parse", "HEAD") == record.run["base_commit"]


def test_a_project_that_is_not_a_git_repository_ends_the_run(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    (plain / "calc.py").write_text(CALC_PY)
    h, provider = harness(settings, session_factory, GOOD_REPLY)

    run_id, state = h.run(make_plan(), plain)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_FAILED_ENVIRONMENT
    assert str(plain) in record.run["failure_reason"]
    assert "not a git repository" in record.run["failure_reason"]
    assert provider.calls == []
    assert not (plain / ".git").exists()
    assert sorted(p.name for p in plain.iterdir()) == ["calc.py"]


# --- secrets ------------------------------------------------------------------------------------

CANARY_ANTHROPIC = "sk-ant-canary-0123456789abcdef"
# Not shaped like any known key: only redaction by value can catch it.
CANARY_OPENAI = "openai-canary-zyxwvutsrqponm-9876"
CANARIES = (CANARY_ANTHROPIC, CANARY_OPENAI)
ENV_DUMP_CMD = "sh -c 'env; python -m pytest -q'"


def _secret_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        tmp_path / "runs",
        anthropic_api_key=CANARY_ANTHROPIC,
        openai_api_key=CANARY_OPENAI,
    )


def _assert_no_canary(settings: Settings, record: RunRecord, provider: ScriptedProvider) -> None:
    places: dict[str, str] = {
        "events": repr([e["payload"] for e in record.events]),
        **{
            f"attempts.{column}": repr([a[column] for a in attempts])
            for attempts in record.attempts.values()
            for column in (attempts[0] if attempts else {})
        },
        "llm_calls": repr(record.llm_calls),
        "issues": repr(record.issues),
        "run": repr(record.run),
        "requests to the model": repr([prompt_text(r) for r in provider.requests]),
    }
    for path in settings.runs_dir.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    leaks = sorted(
        f"{canary[:12]}... in {where}"
        for where, text in places.items()
        for canary in CANARIES
        if canary in text
    )
    assert leaks == [], "secrets leaked: " + "; ".join(leaks)


def test_secrets_never_leak_into_logs_artifacts_or_records(
    database_url: str,
    session_factory: sessionmaker[Session],
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _secret_settings(database_url, tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY_ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_OPENAI)
    # The first attempt breaks a test, so the test output is fed back to the model.
    h, provider = harness(settings, session_factory, BREAKING_REPLY, GOOD_REPLY)

    run_id, state = h.run(make_plan(phase_spec(scope={"test_cmd": ENV_DUMP_CMD})), project)

    record = load_record(session_factory, run_id)
    assert state is RunState.DONE_SUCCESS, record.run["failure_reason"]
    logs = [attempt_dir(settings, run_id, "p1", n) / "test.log" for n in (1, 2)]
    for log in logs:
        text = log.read_text()
        assert "\nPATH=" in text, "the test command printed its environment"
        assert "ANTHROPIC_API_KEY" not in text and "OPENAI_API_KEY" not in text
    assert "PATH=" in prompt_text(provider.requests[1]), "the env dump was fed back"
    _assert_no_canary(settings, record, provider)


def test_a_secret_printed_by_the_tests_is_not_sent_to_the_model(
    database_url: str,
    session_factory: sessionmaker[Session],
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _secret_settings(database_url, tmp_path)
    # A name no scrubber pattern matches, holding a configured secret's value.
    monkeypatch.setenv("PROJECT_NOTE", CANARY_OPENAI)
    h, provider = harness(settings, session_factory, BREAKING_REPLY, GOOD_REPLY)

    run_id, state = h.run(make_plan(phase_spec(scope={"test_cmd": ENV_DUMP_CMD})), project)

    assert state is RunState.DONE_SUCCESS
    log = (attempt_dir(settings, run_id, "p1", 1) / "test.log").read_text()
    assert "PROJECT_NOTE=[REDACTED]" in log, "the artifact is redacted"
    _assert_no_canary(settings, load_record(session_factory, run_id), provider)


# --- cancel -------------------------------------------------------------------------------------

SLOW_PY = """\
import os
import pathlib
import time

if pathlib.Path("slow.flag").exists():
    pathlib.Path(os.environ["AUTOPACK_TEST_PIDFILE"]).write_text(str(os.getpid()))
    time.sleep(30)
"""


@dataclass
class Cancelled:
    run_id: str
    state: RunState | None
    error: BaseException | None
    pid: int
    pgid: int
    stopped_after_s: float
    stopped: bool


def run_and_cancel(
    settings: Settings,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Cancelled:
    """Start a run whose attempt's test command hangs, cancel it (the services' cancel_run, from
    this thread) once the command is running, and wait up to 15 s for the executor to stop."""
    project = make_project(tmp_path / "project", {**PROJECT_FILES, "slow.py": SLOW_PY})
    pidfile = tmp_path / "slow.pid"
    monkeypatch.setenv("AUTOPACK_TEST_PIDFILE", str(pidfile))
    # The baseline is quick (no flag); the attempt's edits add the flag, so its tests hang.
    reply = whole_file("slow.flag", "slow\n") + "\n" + GOOD_REPLY
    h, _ = harness(settings, sessions, reply)
    plan = make_plan(
        phase_spec(
            scope={
                "paths": ["calc.py", "slow.flag"],
                "test_cmd": "python slow.py && python -m pytest -q",
            }
        )
    )
    run_id = h.submit(plan, project)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["state"] = execute(h.env, run_id)
        except BaseException as exc:  # reported by the caller
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert worker.is_alive(), f"the run ended before its tests started: {outcome}"
        assert time.monotonic() < deadline, "the slow test command never started"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    pgid = os.getpgid(pid)

    cancelled_at = time.monotonic()
    with sessions() as session:
        cancel_run(session, run_id, reason="stop it")
    worker.join(timeout=15)
    return Cancelled(
        run_id=run_id,
        state=outcome.get("state"),
        error=outcome.get("error"),
        pid=pid,
        pgid=pgid,
        stopped_after_s=time.monotonic() - cancelled_at,
        stopped=not worker.is_alive(),
    )


def test_cancel_stops_a_running_test_command_within_seconds(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run_and_cancel(settings, session_factory, tmp_path, monkeypatch)

    assert result.pgid != os.getpgid(0), "the test command runs in its own process group"
    assert result.stopped, "the executor did not stop within 15 s of the cancel"
    assert result.error is None, result.error
    assert result.stopped_after_s < 15
    assert result.state is RunState.CANCELLED
    assert not process_alive(result.pid)
    assert live_group_members(result.pgid) == []
    record = load_record(session_factory, result.run_id)
    assert record.run["state"] is RunState.CANCELLED
    cancelled = [
        e for e in record.events_of("run.state_changed") if e["payload"]["to"] == "CANCELLED"
    ]
    assert [e["payload"].get("reason") for e in cancelled] == ["stop it"]
    # Nothing was committed, and the phase did not go on after the cancel.
    assert record.run["head_commit"] == record.run["base_commit"]
    assert record.phase()["state"] is not PhaseState.COMPLETE
    test_log = attempt_dir(settings, result.run_id, "p1", 1) / "test.log"
    assert "cancelled; the process group was killed" in test_log.read_text()


def test_cancel_finishes_the_attempt_in_flight(
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = run_and_cancel(settings, session_factory, tmp_path, monkeypatch)

    assert result.state is RunState.CANCELLED
    record = load_record(session_factory, result.run_id)
    (attempt,) = record.attempts["p1"]
    assert attempt["finished_at"] is not None and attempt["outcome"] is not None
    assert record.phase()["state"] not in PHASE_ACTIVE_STATES
