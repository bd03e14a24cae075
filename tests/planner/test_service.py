"""Drafting with a scripted model: a valid reply, one repair round, a rejection, provider
failures, and every call in the llm_calls ledger (both databases)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConfigurationError, InvalidInputError
from autopack.llm.pricing import completion_cost
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    ProviderError,
    ReplayMissError,
)
from autopack.llm.routing import Router, load_routing
from autopack.planner.service import (
    PlanDraftRejected,
    PlannerProviderError,
    draft_plan,
)
from autopack.plans.loader import load_plan
from autopack.usage.models import LlmCall, LlmRole
from tests.executor.support import ScriptedProvider
from tests.planner.support import IDEA, INVALID_PLAN, VALID_PLAN, fenced, make_repo

ROUTER = Router(load_routing())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc")


def ledger(sessions: sessionmaker[Session]) -> list[LlmCall]:
    with sessions() as session:
        return list(session.scalars(select(LlmCall).order_by(LlmCall.id)))


def test_a_valid_reply_is_the_draft(repo: Path, session_factory: sessionmaker[Session]) -> None:
    provider = ScriptedProvider([fenced(VALID_PLAN)])
    draft = draft_plan(IDEA, repo, provider=provider, router=ROUTER, sessions=session_factory)
    assert draft.yaml == VALID_PLAN
    assert draft.plan == load_plan(VALID_PLAN, fmt="yaml")
    assert draft.model == ROUTER.select("planner", "medium").model
    assert not draft.repaired
    (request,) = provider.requests
    assert request.model == draft.model
    assert request.max_tokens == ROUTER.select("planner", "medium").max_tokens
    assert provider.calls[0].context.role == "planner"
    (row,) = ledger(session_factory)
    assert row.role is LlmRole.PLANNER
    assert row.run_pk is None
    assert row.outcome == "ok"
    assert row.model == draft.model
    assert row.input_tokens == draft.input_tokens > 0
    assert row.output_tokens == draft.output_tokens > 0
    assert row.cost_usd == draft.cost_usd > 0
    assert row.latency_ms is not None


def test_the_cost_is_priced_by_the_routing_file(repo: Path) -> None:
    provider = ScriptedProvider([fenced(VALID_PLAN)])
    draft = draft_plan(IDEA, repo, provider=provider, router=ROUTER, complexity="high")
    spec = ROUTER.select("planner", "high").spec
    completion = Completion(
        text="",
        model=draft.model,
        provider="x",
        input_tokens=draft.input_tokens,
        output_tokens=draft.output_tokens,
    )
    assert draft.cost_usd == completion_cost(spec, completion)
    assert draft.model == ROUTER.select("planner", "high").model


def test_the_prompt_holds_the_idea_the_repo_map_and_the_test_command(repo: Path) -> None:
    provider = ScriptedProvider([fenced(VALID_PLAN)])
    draft_plan(IDEA, repo, provider=provider, router=ROUTER)
    system, user = provider.requests[0].messages
    assert system.role == "system"
    assert "exactly one fenced ```yaml block" in system.content
    assert IDEA in user.content
    assert "calc.py" in user.content
    assert "def mul(a, b)" in user.content
    assert "tests/test_calc.py" in user.content
    assert "`python -m pytest -q`" in user.content


def test_an_invalid_reply_is_repaired_once(
    repo: Path, session_factory: sessionmaker[Session]
) -> None:
    first = fenced(INVALID_PLAN)
    provider = ScriptedProvider([first, fenced(VALID_PLAN)])
    draft = draft_plan(IDEA, repo, provider=provider, router=ROUTER, sessions=session_factory)
    assert draft.repaired
    assert len(draft.calls) == 2
    assert draft.yaml == VALID_PLAN
    opening, repair = provider.requests
    assert repair.messages[: len(opening.messages)] == opening.messages
    assert repair.messages[-2].role == "assistant"
    assert repair.messages[-2].content == first
    errors = repair.messages[-1].content
    assert "- phases[0].tier_id: unknown tier 'T9'" in errors
    assert "- tiers[0]: tier 'core' has no phases" in errors
    assert [row.outcome for row in ledger(session_factory)] == ["invalid", "ok"]
    assert "phases[0].tier_id" in (ledger(session_factory)[0].error or "")
    assert draft.input_tokens == sum(call.input_tokens for call in draft.calls)


def test_invalid_twice_is_rejected_with_the_located_problems(
    repo: Path, session_factory: sessionmaker[Session]
) -> None:
    provider = ScriptedProvider([fenced(INVALID_PLAN), "I cannot do better, sorry."])
    with pytest.raises(PlanDraftRejected) as caught:
        draft_plan(IDEA, repo, provider=provider, router=ROUTER, sessions=session_factory)
    error = caught.value
    assert error.code == "plan_draft_rejected"
    assert "invalid twice" in error.message
    assert error.details == [{"loc": "(plan)", "message": "expected a mapping, got str"}]
    assert len(error.calls) == 2
    assert error.replies[1] == "I cannot do better, sorry."
    assert [row.outcome for row in ledger(session_factory)] == ["invalid", "invalid"]


def test_a_reply_cut_off_at_max_tokens_is_repaired(repo: Path) -> None:
    def cut_off(request: CompletionRequest, context: CallContext) -> Completion:
        return Completion(
            text=fenced(VALID_PLAN),
            model=request.model,
            provider="anthropic",
            input_tokens=10,
            output_tokens=request.max_tokens,
            stop_reason="max_tokens",
        )

    scripted = ScriptedProvider([fenced(VALID_PLAN)])

    class Provider:
        name = "anthropic"
        count = 0

        def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
            self.count += 1
            if self.count == 1:
                return cut_off(request, context)
            assert "cut off at the limit" in request.messages[-1].content
            return scripted.complete(request, context=context)

    draft = draft_plan(IDEA, repo, provider=Provider(), router=ROUTER)
    assert draft.repaired
    assert [call.outcome for call in draft.calls] == ["truncated", "ok"]


class Failing:
    name = "anthropic"

    def __init__(self, error: ProviderError) -> None:
        self.error = error

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        raise self.error


def test_a_provider_error_ends_the_draft(
    repo: Path, session_factory: sessionmaker[Session]
) -> None:
    failure = ProviderError("overloaded", provider="anthropic", retryable=True, status_code=529)
    with pytest.raises(PlannerProviderError) as caught:
        draft_plan(IDEA, repo, provider=Failing(failure), router=ROUTER, sessions=session_factory)
    error = caught.value
    assert error.code == "provider_error"
    assert "the planner model call failed: overloaded" in error.message
    assert error.details["retryable"] is True
    (row,) = ledger(session_factory)
    assert (row.outcome, row.error, row.cost_usd) == ("error", "overloaded", Decimal(0))


def test_a_replay_miss_keeps_its_code(repo: Path) -> None:
    miss = ReplayMissError("no recorded reply", provider="replay", retryable=False)
    with pytest.raises(PlannerProviderError) as caught:
        draft_plan(IDEA, repo, provider=Failing(miss), router=ROUTER)
    assert caught.value.code == "replay_miss"


def test_a_missing_key_is_a_configuration_error_before_any_call(repo: Path) -> None:
    class Keyless(ScriptedProvider):
        def missing_credentials(self, models: object) -> list[str]:
            return ["ANTHROPIC_API_KEY is not set"]

    provider = Keyless([fenced(VALID_PLAN)])
    with pytest.raises(ConfigurationError) as caught:
        draft_plan(IDEA, repo, provider=provider, router=ROUTER)
    assert "ANTHROPIC_API_KEY is not set" in caught.value.message
    assert provider.calls == []


@pytest.mark.parametrize(
    ("idea", "complexity", "loc"),
    [("   ", "medium", "idea"), ("x" * 20_001, "medium", "idea"), (IDEA, "huge", "complexity")],
)
def test_bad_arguments_are_refused_before_any_call(
    repo: Path, idea: str, complexity: str, loc: str
) -> None:
    provider = ScriptedProvider([])
    with pytest.raises(InvalidInputError) as caught:
        draft_plan(idea, repo, provider=provider, router=ROUTER, complexity=complexity)
    assert caught.value.details[0]["loc"] == loc
    assert provider.calls == []


def test_the_map_shrinks_to_its_budget(repo: Path) -> None:
    provider = ScriptedProvider([fenced(VALID_PLAN)])
    draft_plan(IDEA, repo, provider=provider, router=ROUTER, map_tokens=0)
    prompt = provider.requests[0].messages[1].content
    assert "def mul(a, b)" not in prompt
    assert "files, none shown: no room for the map" in prompt
    assert "no files yet" not in prompt
