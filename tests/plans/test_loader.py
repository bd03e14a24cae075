"""Plan parsing and validation: every problem reported with its path, nothing guessed."""

from __future__ import annotations

import copy
import json

import pytest

from autopack.plans.loader import (
    MalformedPlanError,
    PlanValidationError,
    format_loc,
    load_plan,
    parse_plan_text,
    validate_plan,
)
from tests.factories import V7_BODY, plan_body


def test_v7_body_is_accepted_as_it_is() -> None:
    plan = validate_plan(copy.deepcopy(V7_BODY))
    assert plan.run.run_id == "my-first-run"
    assert plan.project is None
    assert plan.phases[0].builder_mode == "compose"


def test_json_and_yaml_give_the_same_plan() -> None:
    import yaml

    body = plan_body("same")
    assert load_plan(json.dumps(body)) == load_plan(yaml.safe_dump(body))


def test_indexes_default_to_list_order_and_phases_follow_tiers() -> None:
    body = {
        "tiers": [
            {"tier_id": "B", "name": "b", "tier_index": 1},
            {"tier_id": "A", "name": "a", "tier_index": 0},
        ],
        "phases": [
            {"phase_id": "b1", "tier_id": "B", "name": "x"},
            {"phase_id": "a2", "tier_id": "A", "name": "x", "phase_index": 5},
            {"phase_id": "a1", "tier_id": "A", "name": "x", "phase_index": 2},
        ],
    }
    plan = validate_plan(body)
    assert [t.tier_id for t in plan.tiers] == ["A", "B"]
    assert [p.phase_id for p in plan.phases] == ["a1", "a2", "b1"]
    assert plan.phases[2].phase_index == 0


@pytest.mark.parametrize(
    ("loc", "text"),
    [(("phases", 0, "tier_id"), "phases[0].tier_id"), (("run",), "run"), ((), "(plan)")],
)
def test_format_loc(loc: tuple[int | str, ...], text: str) -> None:
    assert format_loc(loc) == text


def test_all_cross_reference_problems_are_listed_together() -> None:
    body = {
        "run": {"max_phases": 1},
        "tiers": [
            {"tier_id": "T1", "name": "a"},
            {"tier_id": "T1", "name": "b"},
            {"tier_id": "T3", "name": "c"},
        ],
        "phases": [
            {"phase_id": "P1", "tier_id": "T1", "name": "x"},
            {"phase_id": "P1", "tier_id": "T2", "name": "y"},
        ],
    }
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(body)
    details = caught.value.details
    assert {d["loc"] for d in details} == {
        "tiers[1].tier_id",
        "phases[1].phase_id",
        "phases[1].tier_id",
        "tiers[2]",
        "run.max_phases",
    }
    assert "(and 4 more)" in caught.value.message


def test_empty_tiers_or_phases_are_refused() -> None:
    with pytest.raises(PlanValidationError) as caught:
        validate_plan({"tiers": [], "phases": []})
    assert {d["loc"] for d in caught.value.details} == {"tiers", "phases"}


@pytest.mark.parametrize("run_id", ["../escape", "has space", "", "x" * 129, "-leading-dash"])
def test_run_ids_must_be_safe_identifiers(run_id: str) -> None:
    body = plan_body()
    body["run"]["run_id"] = run_id
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(body)
    assert caught.value.details[0]["loc"] == "run.run_id"


def test_negative_budgets_are_refused() -> None:
    body = plan_body()
    body["run"]["token_cap"] = -5
    body["run"]["cost_cap_usd"] = 0
    with pytest.raises(PlanValidationError) as caught:
        validate_plan(body)
    assert {d["loc"] for d in caught.value.details} == {"run.token_cap", "run.cost_cap_usd"}


def test_yaml_duplicate_keys_and_syntax_errors_name_the_line() -> None:
    with pytest.raises(MalformedPlanError, match="duplicate key 'tiers' at line 3"):
        parse_plan_text("run: {}\ntiers: []\ntiers: []\n")
    with pytest.raises(MalformedPlanError, match="line 2"):
        parse_plan_text("run: {}\n  tiers: [\n")


def test_yaml_cannot_construct_python_objects() -> None:
    with pytest.raises(MalformedPlanError):
        parse_plan_text("run: !!python/object/apply:os.system ['true']\n")


def test_non_utf8_and_non_mapping_documents() -> None:
    with pytest.raises(MalformedPlanError, match="UTF-8"):
        parse_plan_text(b"\xff\xfe\x00")
    with pytest.raises(PlanValidationError, match="mapping"):
        load_plan("- just\n- a list\n")
