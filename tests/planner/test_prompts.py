"""The planner's prompts teach the plan format with a valid example, and carry the idea, the
repository map and the detected test setup."""

from __future__ import annotations

import re

from autopack.planner.prompts import (
    EXAMPLE_PLAN,
    PLANNER_SYSTEM_PROMPT,
    planner_user_message,
    repair_messages,
)
from autopack.planner.repo import TestSetup
from autopack.plans.loader import load_plan
from autopack.plans.models import PhaseScope, PhaseSpec, RunSpec, TierSpec


def test_the_example_plan_in_the_system_prompt_is_valid() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", PLANNER_SYSTEM_PROMPT, re.M | re.S)
    assert blocks == [EXAMPLE_PLAN]
    plan = load_plan(EXAMPLE_PLAN, fmt="yaml")
    assert all(phase.scope.test_cmd and phase.scope.acceptance_criteria for phase in plan.phases)


def test_the_format_names_the_fields_the_planner_should_write() -> None:
    taught = {"run_id", "goal", "tier_id", "phase_id", "task_category", "complexity", "scope"}
    taught |= {"paths", "read_only_context", "acceptance_criteria", "test_cmd"}
    known = set(RunSpec.model_fields) | set(TierSpec.model_fields) | set(PhaseSpec.model_fields)
    known |= set(PhaseScope.model_fields)
    assert taught <= known
    for field in taught:
        assert f"{field}:" in PLANNER_SYSTEM_PROMPT, field
    assert "exactly one fenced ```yaml block" in PLANNER_SYSTEM_PROMPT


def test_the_user_message_holds_the_idea_the_map_and_the_tests() -> None:
    text = planner_user_message(
        "Add CSV export",
        "calc.py\n  def add(a, b)",
        [TestSetup("python -m pytest -q", ("pytest.ini",))],
    )
    assert "## The idea\n\nAdd CSV export" in text
    assert "calc.py\n  def add(a, b)" in text
    assert "`python -m pytest -q` (from pytest.ini)" in text
    assert "Leave `project` out" in text


def test_a_project_is_named_and_an_empty_repo_said() -> None:
    text = planner_user_message("x", "", [], project="calc")
    assert "`project: calc`" in text
    assert "no files yet" in text
    assert "No test setup was detected" in text


def test_the_repair_round_shows_the_reply_and_the_located_problems() -> None:
    messages = repair_messages(
        (), "the reply", [{"loc": "phases[0].tier_id", "message": "unknown tier 'T9'"}]
    )
    assert [m.role for m in messages] == ["assistant", "user"]
    assert messages[0].content == "the reply"
    assert "- phases[0].tier_id: unknown tier 'T9'" in messages[1].content
    assert "found 1 problem," in messages[1].content
