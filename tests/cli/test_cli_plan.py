"""``autopack plan validate``: summaries, located errors one per line, and clean failures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import Invoke, assert_clean_failure

ROOT = Path(__file__).resolve().parents[2]
V7_MINIMAL = ROOT / "examples" / "plans" / "v7-minimal.json"

TWO_PROBLEMS_YAML = """\
run:
  run_id: broken
tiers:
  - tier_id: T1
    name: First
  - tier_id: T2
    name: Second
phases:
  - phase_id: P1
    tier_id: T9
    name: Orphan
  - phase_id: P2
    tier_id: T1
    name: Fine
"""


def test_valid_plan_prints_a_summary(cli_no_db: Invoke) -> None:
    result = cli_no_db("plan", "validate", str(V7_MINIMAL))
    assert result.exit_code == 0, result.output
    assert "valid plan" in result.stdout
    assert "my-first-run" in result.stdout
    assert "T1: 1 phase" in result.stdout
    assert result.stderr == ""


def test_plan_without_run_id_says_generated(cli_no_db: Invoke, tmp_path: Path) -> None:
    plan = json.loads(V7_MINIMAL.read_text())
    del plan["run"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = cli_no_db("plan", "validate", str(path))
    assert result.exit_code == 0, result.output
    assert "(generated)" in result.stdout


def test_validate_reads_stdin(cli_no_db: Invoke) -> None:
    result = cli_no_db("plan", "validate", "-", input=V7_MINIMAL.read_text())
    assert result.exit_code == 0, result.output
    assert "standard input: valid plan" in result.stdout


def test_invalid_plan_lists_each_error_on_its_own_line(cli_no_db: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(TWO_PROBLEMS_YAML)
    result = cli_no_db("plan", "validate", str(path))
    assert_clean_failure(result)
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: {path} is not a valid plan (2 problems):"
    assert lines[1].startswith("  phases[0].tier_id: unknown tier 'T9'")
    assert lines[2] == "  tiers[1]: tier 'T2' has no phases"
    assert result.stdout == ""


def test_unknown_field_is_located(cli_no_db: Invoke, tmp_path: Path) -> None:
    plan = json.loads(V7_MINIMAL.read_text())
    plan["phases"][0]["complexty"] = "low"
    plan["tiers"][0]["tier_id"] = "bad id"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = cli_no_db("plan", "validate", str(path))
    assert_clean_failure(result)
    lines = result.stderr.splitlines()
    assert any(line.startswith("  phases[0].complexty: ") for line in lines), lines
    assert any(line.startswith("  tiers[0].tier_id: ") for line in lines), lines


def test_malformed_yaml(cli_no_db: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "plan.yml"
    path.write_text("run:\n  run_id: [unclosed\ntiers: []\n")
    result = cli_no_db("plan", "validate", str(path))
    assert_clean_failure(result)
    assert result.stderr.startswith(f"error: {path}: the plan is not valid YAML")
    assert "line " in result.stderr


def test_extension_decides_the_format(cli_no_db: Invoke, tmp_path: Path) -> None:
    # YAML text in a .json file is read as JSON, and fails as JSON.
    path = tmp_path / "plan.json"
    path.write_text("run:\n  run_id: x\n")
    result = cli_no_db("plan", "validate", str(path))
    assert_clean_failure(result)
    assert "not valid JSON" in result.stderr


def test_missing_file(cli_no_db: Invoke, tmp_path: Path) -> None:
    result = cli_no_db("plan", "validate", str(tmp_path / "nope.yaml"))
    assert_clean_failure(result)
    assert "cannot read the plan file" in result.stderr
    assert "No such file or directory" in result.stderr


def test_plan_validate_needs_no_database(cli_no_db: Invoke, runs_dir: Path) -> None:
    result = cli_no_db("plan", "validate", str(V7_MINIMAL))
    assert result.exit_code == 0, result.output
    assert not runs_dir.exists()
