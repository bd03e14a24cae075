"""``autopack plan new`` against both databases, with the model replayed from a cassette recorded
for the exact requests the planner makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from autopack.db.engine import create_db_engine, create_session_factory
from autopack.executor.environment import load_router
from autopack.usage.models import LlmCall, LlmRole
from tests.cli.support import Invoke, assert_clean_failure
from tests.conftest import make_settings
from tests.planner.support import (
    IDEA,
    INVALID_PLAN,
    VALID_PLAN,
    fenced,
    make_repo,
    record_cassette,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc")


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    return tmp_path / "planner.jsonl"


def record(cassette: Path, repo: Path, replies: list[str], database_url: str) -> None:
    router = load_router(make_settings(database_url, cassette.parent))
    record_cassette(cassette, repo, replies, router)


def ledger(database_url: str, tmp_path: Path) -> list[LlmCall]:
    engine = create_db_engine(make_settings(database_url, tmp_path))
    try:
        with create_session_factory(engine)() as session:
            return list(session.scalars(select(LlmCall).order_by(LlmCall.id)))
    finally:
        engine.dispose()


def test_a_valid_plan_is_written_and_recorded(
    cli: Invoke, repo: Path, cassette: Path, tmp_path: Path, database_url: str
) -> None:
    record(cassette, repo, [fenced(VALID_PLAN)], database_url)
    out = tmp_path / "plan.yaml"
    result = cli(
        "plan", "new", IDEA, "--repo", str(repo), "-o", str(out),
        AUTOPACK_REPLAY_CASSETTE=str(cassette),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_text() == VALID_PLAN
    assert result.stdout == ""
    assert "drafted a plan of 1 tier and 1 phase" in result.stderr
    assert "claude-sonnet-5-5" in result.stderr
    assert "repair round: no" in result.stderr
    assert "1 call, 1,000 tokens in / 200 out, $0.004000" in result.stderr
    assert f"wrote {out}" in result.stderr
    (row,) = ledger(database_url, tmp_path)
    assert (row.role, row.run_pk, row.outcome) == (LlmRole.PLANNER, None, "ok")
    assert (row.input_tokens, row.output_tokens) == (1000, 200)
    assert cli("plan", "validate", str(out)).exit_code == 0


def test_without_output_the_plan_goes_to_stdout(
    cli: Invoke, repo: Path, cassette: Path, database_url: str
) -> None:
    record(cassette, repo, [fenced(VALID_PLAN)], database_url)
    result = cli("plan", "new", IDEA, "--repo", str(repo), AUTOPACK_REPLAY_CASSETTE=str(cassette))
    assert result.exit_code == 0, result.output
    assert result.stdout == VALID_PLAN


def test_a_repaired_plan_says_so(
    cli: Invoke, repo: Path, cassette: Path, tmp_path: Path, database_url: str
) -> None:
    record(cassette, repo, [fenced(INVALID_PLAN), fenced(VALID_PLAN)], database_url)
    result = cli("plan", "new", IDEA, "--repo", str(repo), AUTOPACK_REPLAY_CASSETTE=str(cassette))
    assert result.exit_code == 0, result.output
    assert "repair round: yes" in result.stderr
    assert "2 calls, 2,000 tokens in / 400 out" in result.stderr
    assert [row.outcome for row in ledger(database_url, tmp_path)] == ["invalid", "ok"]


def test_invalid_twice_exits_1_with_the_problems_and_writes_nothing(
    cli: Invoke, repo: Path, cassette: Path, tmp_path: Path, database_url: str
) -> None:
    record(cassette, repo, [fenced(INVALID_PLAN), fenced(INVALID_PLAN)], database_url)
    out = tmp_path / "plan.yaml"
    result = cli(
        "plan", "new", IDEA, "--repo", str(repo), "-o", str(out),
        AUTOPACK_REPLAY_CASSETTE=str(cassette),
    )  # fmt: skip
    assert_clean_failure(result)
    assert not out.exists()
    lines = result.stderr.splitlines()
    assert "2 calls" in lines[0]
    assert lines[1].startswith("error: the planner model's plan was invalid twice")
    assert lines[2].startswith("  phases[0].tier_id: unknown tier 'T9'")
    assert lines[3] == "  tiers[0]: tier 'core' has no phases"
    assert len(ledger(database_url, tmp_path)) == 2


def test_an_existing_output_is_refused_before_any_call_unless_forced(
    cli: Invoke, repo: Path, cassette: Path, tmp_path: Path, database_url: str
) -> None:
    out = tmp_path / "plan.yaml"
    out.write_text("mine\n")
    result = cli("plan", "new", IDEA, "--repo", str(repo), "-o", str(out))
    assert_clean_failure(result)
    assert "pass --force to overwrite it" in result.stderr
    assert out.read_text() == "mine\n"
    record(cassette, repo, [fenced(VALID_PLAN)], database_url)
    result = cli(
        "plan", "new", IDEA, "--repo", str(repo), "-o", str(out), "--force",
        AUTOPACK_REPLAY_CASSETTE=str(cassette),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_text() == VALID_PLAN


def test_a_provider_that_cannot_be_built_is_a_clean_error(
    cli: Invoke, repo: Path, tmp_path: Path
) -> None:
    result = cli(
        "plan", "new", IDEA, "--repo", str(repo),
        AUTOPACK_REPLAY_CASSETTE=str(tmp_path / "missing.jsonl"),
    )  # fmt: skip
    assert_clean_failure(result)
    assert "error: cannot draft a plan without a model provider" in result.stderr


def test_a_replay_miss_is_a_clean_error(
    cli: Invoke, repo: Path, cassette: Path, database_url: str, tmp_path: Path
) -> None:
    cassette.write_text("")
    result = cli("plan", "new", IDEA, "--repo", str(repo), AUTOPACK_REPLAY_CASSETTE=str(cassette))
    assert_clean_failure(result)
    assert "error: the planner model call failed: no recorded reply" in result.stderr
    assert [row.outcome for row in ledger(database_url, tmp_path)] == ["error"]


def test_a_repo_that_is_not_a_directory_is_refused(
    cli: Invoke, cassette: Path, tmp_path: Path
) -> None:
    cassette.write_text("")
    result = cli(
        "plan", "new", IDEA, "--repo", str(tmp_path / "nowhere"),
        AUTOPACK_REPLAY_CASSETTE=str(cassette),
    )  # fmt: skip
    assert_clean_failure(result)
    assert "is not a local directory" in result.stderr


def test_complexity_is_checked_by_the_cli(cli: Invoke, repo: Path) -> None:
    result = cli("plan", "new", IDEA, "--repo", str(repo), "--complexity", "huge")
    assert result.exit_code == 2
