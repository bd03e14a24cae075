"""``autopack runs``: create, list, show and cancel through the services, on both dialects."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from autopack.runs.schemas import Page, RunDetail, RunSummary
from autopack.runs.states import RunState
from tests.cli.support import Invoke, assert_clean_failure
from tests.conftest import row_counts

ROOT = Path(__file__).resolve().parents[2]
TWO_TIER = ROOT / "examples" / "plans" / "two-tier.yaml"
V7_MINIMAL = ROOT / "examples" / "plans" / "v7-minimal.json"


def create(cli: Invoke, plan: Path) -> str:
    result = cli("runs", "create", str(plan))
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_create_list_show_cancel(cli: Invoke) -> None:
    run_id = create(cli, TWO_TIER)
    assert run_id == "add-rate-limiting"

    listed = cli("runs", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    for cell in ("default", "QUEUED", "0/3", "0/400k", "$0.00/$5.00"):
        assert cell in row, row

    shown = cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    for text in ("core", "integration", "limiter-module", "api-middleware", "PENDING", "QUEUED"):
        assert text in shown.stdout
    # Phases are listed under their tier, in order.
    out = shown.stdout
    assert out.index("core") < out.index("limiter-module") < out.index("limiter-config")
    assert out.index("limiter-config") < out.index("integration") < out.index("api-middleware")

    cancelled = cli("runs", "cancel", run_id, "--reason", "not today")
    assert cancelled.exit_code == 0, cancelled.output
    assert "CANCELLED" in cancelled.stdout

    again = cli("runs", "cancel", run_id)
    assert_clean_failure(again)
    assert again.stderr.startswith("error: ")
    assert "CANCELLED" in again.stderr

    after = cli("runs", "list", "--state", "cancelled")
    assert run_id in after.stdout
    assert "No runs." in cli("runs", "list", "--state", "QUEUED").stdout


def test_json_output_uses_the_api_schemas(cli: Invoke) -> None:
    first = create(cli, V7_MINIMAL)
    second = create(cli, TWO_TIER)

    listed = cli("runs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    page = Page[RunSummary].model_validate_json(listed.stdout)
    assert page.total == 2
    assert {item.run_id for item in page.items} == {first, second}
    by_id = {item.run_id: item for item in page.items}
    assert by_id[second].phases_total == 3
    assert by_id[second].budget.token_cap == 400_000

    limited = Page[RunSummary].model_validate_json(
        cli("runs", "list", "--json", "--limit", "1").stdout
    )
    assert (limited.total, len(limited.items), limited.limit) == (2, 1, 1)

    shown = cli("runs", "show", second, "--json")
    assert shown.exit_code == 0, shown.output
    detail = RunDetail.model_validate_json(shown.stdout)
    assert detail.state is RunState.QUEUED
    assert [tier.tier_id for tier in detail.tiers] == ["core", "integration"]
    assert [p.phase_id for p in detail.tiers[0].phases] == ["limiter-module", "limiter-config"]
    assert json.loads(shown.stdout)["run_id"] == second


def test_show_unknown_run(cli: Invoke) -> None:
    result = cli("runs", "show", "no-such-run")
    assert_clean_failure(result)
    assert result.stderr.strip() == "error: run 'no-such-run' does not exist"


def test_cancel_unknown_run(cli: Invoke) -> None:
    result = cli("runs", "cancel", "no-such-run")
    assert_clean_failure(result)
    assert "does not exist" in result.stderr


def test_create_twice_is_a_conflict(cli: Invoke) -> None:
    create(cli, V7_MINIMAL)
    result = cli("runs", "create", str(V7_MINIMAL))
    assert_clean_failure(result)
    assert "already exists" in result.stderr


def test_create_rejects_an_invalid_plan_and_writes_nothing(
    cli: Invoke, engine: Engine, tmp_path: Path
) -> None:
    before = row_counts(engine)
    plan = json.loads(V7_MINIMAL.read_text())
    plan["phases"][0]["tier_id"] = "T2"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = cli("runs", "create", str(path))
    assert_clean_failure(result)
    assert "  phases[0].tier_id: unknown tier 'T2'" in result.stderr.splitlines()[1]
    assert row_counts(engine) == before


def test_create_from_stdin_with_unknown_project(cli: Invoke) -> None:
    plan = json.loads(V7_MINIMAL.read_text())
    plan["project"] = "unregistered"
    result = cli("runs", "create", "-", input=json.dumps(plan))
    assert_clean_failure(result)
    assert "project 'unregistered' does not exist" in result.stderr


def test_empty_list(cli: Invoke) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No runs."
    assert cli("runs", "list", "--json").stdout.count('"items": []') == 1


def test_bad_state_is_a_usage_error(cli: Invoke) -> None:
    result = cli("runs", "list", "--state", "BOGUS")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
