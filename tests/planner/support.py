"""Helpers of the planner's tests: a tiny repository, plan replies, and cassettes recorded from
the exact requests the planner makes."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from autopack.llm.provider import CompletionRequest
from autopack.llm.replay import CassetteWriter
from autopack.llm.routing import Router
from autopack.planner.service import PlanDraftRejected, draft_plan
from tests.executor.support import ScriptedProvider, make_project

IDEA = "Add a sub(a, b) function to the calculator, with tests"

VALID_PLAN = """\
run:
  run_id: calc-sub
  goal: Add sub to the calculator
tiers:
  - tier_id: core
    name: Arithmetic
phases:
  - phase_id: add-sub
    tier_id: core
    name: sub function
    description: Add sub(a, b) to calc.py, returning a - b.
    task_category: feature
    complexity: low
    scope:
      paths: [calc.py, tests/test_calc.py]
      read_only_context: [README.md]
      acceptance_criteria:
        - sub(5, 3) == 2, tested in tests/test_calc.py
      test_cmd: python -m pytest -q
"""

# Two problems a validator finds: a phase in an unknown tier, and the tier left without phases.
INVALID_PLAN = VALID_PLAN.replace(
    "    tier_id: core\n    name: sub", "    tier_id: T9\n    name: sub"
)


def fenced(plan: str, prose: str = "Here is the plan.") -> str:
    return f"{prose}\n\n```yaml\n{plan}```\n"


def make_repo(path: Path) -> Path:
    """The calc project of the executor's tests: calc.py, tests/test_calc.py, pytest.ini."""
    return make_project(path)


def record_cassette(
    cassette: Path,
    repo: Path,
    replies: Sequence[str],
    router: Router,
    *,
    idea: str = IDEA,
    complexity: str = "medium",
    project: str | None = None,
) -> list[CompletionRequest]:
    """Draft once with a scripted model, then write its replies to ``cassette`` keyed by the
    exact requests the planner made: a replay of the same draft is then served them in turn."""
    provider = ScriptedProvider(replies)
    # A draft meant to be rejected is recorded too: its replies are what the replay must serve.
    with contextlib.suppress(PlanDraftRejected):
        draft_plan(
            idea, repo, provider=provider, router=router, complexity=complexity, project=project
        )
    writer = CassetteWriter(cassette)
    for call, reply in zip(provider.calls, replies, strict=False):
        writer.append_reply(
            call.request, reply, provider="anthropic", input_tokens=1000, output_tokens=200
        )
    return provider.requests
