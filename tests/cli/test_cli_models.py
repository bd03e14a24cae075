"""``autopack models`` prints the routing in force; ``autopack run`` checks keys before it creates
anything."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import Engine

from tests.cli.support import Invoke, assert_clean_failure
from tests.conftest import row_counts
from tests.executor.support import make_plan, make_project


def test_models_prints_every_model_its_prices_and_whether_its_key_is_set(
    cli_no_db: Invoke,
) -> None:
    missing = cli_no_db("models")
    assert missing.exit_code == 0, missing.output
    opus = next(line for line in missing.stdout.splitlines() if "claude-opus-5-5 " in line)
    assert "anthropic" in opus and "20.0" in opus and "1,000,000" in opus and "missing" in opus
    assert "shipped profile 'default'" in missing.stdout
    assert "claude-haiku-5-5 → claude-sonnet-5-5 → claude-opus-5-5" in missing.stdout

    with_key = cli_no_db("models", ANTHROPIC_API_KEY="sk-ant-secret-value-1234")
    opus = next(line for line in with_key.stdout.splitlines() if "claude-opus-5-5 " in line)
    assert opus.rstrip(" │").endswith("set")
    assert "sk-ant-secret-value-1234" not in with_key.output


def test_models_json_of_the_local_profile(cli_no_db: Invoke) -> None:
    result = cli_no_db(
        "models",
        "--json",
        AUTOPACK_ROUTING_PROFILE="local",
        AUTOPACK_OPENAI_BASE_URL="http://127.0.0.1:11434/v1",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"].startswith("shipped profile 'local'")
    assert set(report["models"]) == {"qwen2.5-coder:7b", "qwen2.5-coder:32b"}
    assert report["models"]["qwen2.5-coder:7b"]["key"] == (
        "none needed (http://127.0.0.1:11434/v1)"
    )
    assert report["roles"]["builder"]["low"] == ["qwen2.5-coder:7b", "qwen2.5-coder:32b"]
    assert report["max_tokens"] == {"builder": 8192, "auditor": 2048, "planner": 4096}


def test_models_reports_a_broken_routing_file(cli_no_db: Invoke, tmp_path: Path) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text("models: {}\n")
    result = cli_no_db("models", AUTOPACK_ROUTING_FILE=str(routing))
    assert_clean_failure(result)
    assert str(routing) in result.output


def test_run_without_the_key_stops_before_creating_anything(
    cli: Invoke, engine: Engine, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(make_plan().model_dump(mode="json", exclude_none=True)))
    before = row_counts(engine)

    result = cli("run", str(plan), "--repo", str(project))

    assert_clean_failure(result)
    assert "the run cannot start: ANTHROPIC_API_KEY is not set" in result.output
    assert row_counts(engine) == before


def test_record_and_replay_together_are_refused(cli: Invoke, tmp_path: Path) -> None:
    result = cli("run", "plan.yaml", "--repo", ".", "--record", "a.jsonl", "--replay", "b.jsonl")
    assert_clean_failure(result)
    assert "--record and --replay cannot be used together" in result.output
