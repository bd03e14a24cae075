"""Reading the planner's reply: which text is the plan, and every problem located."""

from __future__ import annotations

import pytest

from autopack.llm.routing import Router, load_routing
from autopack.planner.reply import (
    ReplyContext,
    ReplyInvalid,
    check_reply,
    extract_yaml,
)
from tests.planner.support import VALID_PLAN, fenced

FILES = frozenset({"calc.py", "README.md", "tests/test_calc.py"})


@pytest.fixture(scope="module")
def context() -> ReplyContext:
    return ReplyContext(files=FILES, router=Router(load_routing()))


def problems(reply: str, context: ReplyContext, **kwargs: int) -> list[dict[str, str]]:
    with pytest.raises(ReplyInvalid) as caught:
        check_reply(reply, context, **kwargs)
    return caught.value.problems


def test_the_yaml_block_is_the_plan(context: ReplyContext) -> None:
    assert check_reply(fenced(VALID_PLAN), context) == VALID_PLAN


def test_a_yml_or_tilde_or_untagged_fence_is_found() -> None:
    assert extract_yaml(f"~~~yml\n{VALID_PLAN}~~~\n") == VALID_PLAN
    assert extract_yaml(f"Plan:\n```\n{VALID_PLAN}```\nDone.") == VALID_PLAN


def test_a_yaml_block_wins_over_other_blocks() -> None:
    reply = f"```text\nnotes\n```\n```yaml\n{VALID_PLAN}```\n"
    assert extract_yaml(reply) == VALID_PLAN


def test_a_reply_without_a_fence_is_read_whole(context: ReplyContext) -> None:
    assert check_reply(VALID_PLAN, context) == VALID_PLAN


def test_two_yaml_blocks_are_ambiguous() -> None:
    with pytest.raises(ReplyInvalid) as caught:
        extract_yaml(fenced(VALID_PLAN) + fenced(VALID_PLAN))
    assert caught.value.problems[0]["loc"] == "(reply)"
    assert "2 ```yaml blocks" in caught.value.problems[0]["message"]


def test_an_unclosed_fence_runs_to_the_end(context: ReplyContext) -> None:
    assert check_reply(f"```yaml\n{VALID_PLAN}", context) == VALID_PLAN


def test_prose_without_yaml_is_invalid_with_a_location(context: ReplyContext) -> None:
    found = problems("I am sorry, I cannot plan this.", context)
    assert found == [{"loc": "(plan)", "message": "expected a mapping, got str"}]


def test_an_empty_reply_is_invalid(context: ReplyContext) -> None:
    assert problems("", context)[0]["loc"] == "(reply)"


def test_broken_yaml_is_located_by_line_and_column(context: ReplyContext) -> None:
    found = problems(fenced("run:\n  run_id: x\n tiers: [\n"), context)
    assert len(found) == 1
    assert found[0]["loc"].startswith("line ")
    assert ", column " in found[0]["loc"]
    assert found[0]["message"].startswith("not valid YAML")


def test_duplicate_keys_are_invalid(context: ReplyContext) -> None:
    found = problems(fenced("run: {}\nrun: {}\n"), context)
    assert "duplicate key" in found[0]["message"]


def test_plan_rules_give_every_problem(context: ReplyContext) -> None:
    reply = VALID_PLAN.replace("    tier_id: core\n    name: sub", "    tier_id: T9\n    name: sub")
    found = problems(reply, context)
    assert [p["loc"] for p in found] == ["phases[0].tier_id", "tiers[0]"]


def test_a_cut_off_reply_is_invalid_even_if_it_parses(context: ReplyContext) -> None:
    found = problems(fenced(VALID_PLAN), context, cut_off_at=4096)
    assert found[0]["loc"] == "(reply)"
    assert "4096" in found[0]["message"]


def test_project_must_match_the_request() -> None:
    router = Router(load_routing())
    named = "project: calc\n" + VALID_PLAN
    without = ReplyContext(files=FILES, router=router)
    assert problems(named, without)[0]["loc"] == "project"
    assert check_reply(named, ReplyContext(files=FILES, router=router, project="calc")) == named
    found = problems(VALID_PLAN, ReplyContext(files=FILES, router=router, project="calc"))
    assert found[0]["loc"] == "project"
    assert "found missing" in found[0]["message"]


def test_unknown_models_are_located(context: ReplyContext) -> None:
    reply = VALID_PLAN.replace("  goal:", "  models: {builder: no-such-model}\n  goal:")
    found = problems(reply, context)
    assert found[0]["loc"] == "run.models.builder"


def test_read_only_context_must_exist_or_come_from_an_earlier_phase(
    context: ReplyContext,
) -> None:
    later = """\
  - phase_id: use-sub
    tier_id: core
    name: use it
    scope:
      paths: [app.py]
      read_only_context: [src/new_module.py, calc.py, ghost.py]
"""
    reply = VALID_PLAN.replace("paths: [calc.py,", "paths: [src/new_module.py, calc.py,") + later
    found = problems(reply, context)
    assert [p["loc"] for p in found] == ["phases[1].scope.read_only_context[2]"]
    assert "'ghost.py'" in found[0]["message"]


def test_read_only_context_written_only_by_a_later_phase_is_refused(
    context: ReplyContext,
) -> None:
    # Listed first, but its tier runs second: the file does not exist yet when it runs.
    reply = """\
tiers:
  - {tier_id: a, name: A, tier_index: 1}
  - {tier_id: b, name: B, tier_index: 0}
phases:
  - {phase_id: p1, tier_id: a, name: writes, scope: {paths: [new.py]}}
  - {phase_id: p2, tier_id: b, name: reads, scope: {read_only_context: [new.py]}}
"""
    found = problems(reply, context)
    assert [p["loc"] for p in found] == ["phases[1].scope.read_only_context[0]"]
