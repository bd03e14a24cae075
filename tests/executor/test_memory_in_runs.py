"""The vector memory inside runs (Qdrant local mode for real): retrieved code reaches the
builder's prompt, a failure fixed in an earlier run brings its fix into the retry prompt, phase
summaries and fixes are stored, the index follows the run's commits, and learned rules go the
whole way from a fixed failure to an active rule in a later run's prompt, and out again when
retired. A memory that cannot be used never stops a run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.memory.provider import MemoryProvider
from autopack.memory.service import SUMMARIES
from autopack.rules.models import Rule, RuleStage
from autopack.rules.service import transition_rule
from autopack.runs.states import RunState
from autopack.settings import Settings
from tests.executor.support import (
    BREAKING_REPLY,
    CALC_PY,
    GOOD_REPLY,
    PROJECT_FILES,
    Harness,
    ScriptedProvider,
    git,
    load_record,
    make_plan,
    make_project,
    phase_spec,
    prompt_text,
    venv_first_on_path,
)

MONEY_PY = '''\
"""Money amounts: currency rounding to cents, half away from zero."""

from decimal import ROUND_HALF_UP, Decimal


def round_currency(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
'''

FILES = {**PROJECT_FILES, "money.py": MONEY_PY, "notes/unrelated.md": "# Gardening\n\nTomatoes.\n"}


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


@pytest.fixture
def memory(settings: Settings) -> Iterator[MemoryProvider]:
    provider = MemoryProvider(settings)
    yield provider
    provider.close()


def harness_with(
    settings: Settings,
    sessions: sessionmaker[Session],
    provider: ScriptedProvider,
    memory: MemoryProvider | None,
) -> Harness:
    harness = Harness(settings, sessions, provider)
    harness.env = replace(harness.env, memory=memory)
    return harness


def test_retrieved_code_reaches_the_builders_prompt(
    settings: Settings,
    session_factory: sessionmaker[Session],
    memory: MemoryProvider,
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path / "project", FILES)
    plan = make_plan(
        phase_spec(
            description="Add a total(prices) to calc.py that sums prices and applies "
            "currency rounding to cents like round_currency does."
        )
    )
    provider = ScriptedProvider([GOOD_REPLY])
    _, state = harness_with(settings, session_factory, provider, memory).run(plan, repo)
    assert state is RunState.DONE_SUCCESS
    prompt = prompt_text(provider.requests[0])
    assert "## Retrieved context" in prompt
    retrieved = prompt.split("## Retrieved context", 1)[1].split("\n## ", 1)[0]
    assert "`money.py`" in retrieved
    assert "amount.quantize(" in retrieved
    assert "Tomatoes" not in retrieved  # unrelated text is not retrieved
    assert "`calc.py`" not in retrieved  # in scope: shown whole above, not again

    # Control: the same run without memory has no retrieved section.
    provider = ScriptedProvider([GOOD_REPLY])
    harness_with(settings, session_factory, provider, None).run(plan, repo)
    assert "## Retrieved context" not in prompt_text(provider.requests[0])
    # (the repo map still names round_currency; its body comes only from memory)
    assert "amount.quantize(" not in prompt_text(provider.requests[0])


def test_the_index_follows_the_runs_commits_and_summaries_are_stored(
    settings: Settings,
    session_factory: sessionmaker[Session],
    memory: MemoryProvider,
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path / "project", FILES)
    provider = ScriptedProvider([GOOD_REPLY])
    run_id, state = harness_with(settings, session_factory, provider, memory).run(make_plan(), repo)
    assert state is RunState.DONE_SUCCESS
    record = load_record(session_factory, run_id)
    head = record.run["head_commit"]
    service = memory.get()
    assert service.indexed_commit("calc") == head
    # The committed change is searchable: sub() exists only in the run's commit.
    hits = service.search("code", "def sub(a, b)", project="calc", limit=3)
    assert hits and hits[0].payload["path"] == "calc.py"
    assert "def sub(a, b):" in hits[0].payload["text"]
    summaries = service.search(SUMMARIES, "Phase p1 calc", project="calc", limit=5)
    assert [hit.payload["run_id"] for hit in summaries] == [run_id]
    assert head in summaries[0].payload["text"]
    assert "calc.py" in summaries[0].payload["text"]
    # The user's repository is only read: its HEAD is still the one commit it had.
    assert git(repo, "rev-list", "--count", "HEAD") == "1"


def test_a_failure_fixed_in_an_earlier_run_brings_its_fix_into_the_retry_prompt(
    settings: Settings,
    session_factory: sessionmaker[Session],
    memory: MemoryProvider,
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path / "project", FILES)
    plan = make_plan()
    first = ScriptedProvider([BREAKING_REPLY, GOOD_REPLY])
    _, state = harness_with(settings, session_factory, first, memory).run(plan, repo)
    assert state is RunState.DONE_SUCCESS
    # Nothing was known during the first run.
    assert "## Known fix" not in prompt_text(first.requests[1])

    second = ScriptedProvider([BREAKING_REPLY, GOOD_REPLY])
    _, state = harness_with(settings, session_factory, second, memory).run(plan, repo)
    assert state is RunState.DONE_SUCCESS
    assert "## Known fix" not in prompt_text(second.requests[0])  # no failure yet
    retry = prompt_text(second.requests[1])
    known = retry.split("## Known fix", 1)[1].split("\n## ", 1)[0]
    assert "Fixed before in phase p1 of run" in known
    assert "+def sub(a, b):" in known  # the diff that made it pass
    assert "test_add" in known  # what had failed


def test_a_memory_that_cannot_be_opened_costs_the_run_its_retrieval_not_its_success(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # Nothing listens there: every memory call fails fast.
    broken = MemoryProvider(
        settings.model_copy(update={"qdrant_url": "http://127.0.0.1:9", "qdrant_host": None})
    )
    repo = make_project(tmp_path / "project", FILES)
    provider = ScriptedProvider([BREAKING_REPLY, GOOD_REPLY])
    try:
        run_id, state = harness_with(settings, session_factory, provider, broken).run(
            make_plan(), repo
        )
    finally:
        broken.close()
    assert state is RunState.DONE_SUCCESS
    record = load_record(session_factory, run_id)
    problems = record.events_of("memory.unavailable")
    assert len(problems) == 1  # said once, not at every call
    assert "indexing the workspace" in problems[0]["payload"]["reason"]
    assert "## Retrieved context" not in prompt_text(provider.requests[0])


def test_learned_rules_go_from_a_fixed_failure_to_a_later_prompt_and_out_when_retired(
    settings: Settings,
    session_factory: sessionmaker[Session],
    memory: MemoryProvider,
    tmp_path: Path,
) -> None:
    settings = settings.model_copy(
        update={"rules_activate_after_confirmations": 1, "rules_retire_after_misses": 2}
    )
    repo = make_project(tmp_path / "project", FILES)
    plan = make_plan()

    def run(replies: list[str]) -> list[str]:
        provider = ScriptedProvider(replies)
        _, state = harness_with(settings, session_factory, provider, memory).run(plan, repo)
        assert state is RunState.DONE_SUCCESS
        return [prompt_text(request) for request in provider.requests]

    def rule() -> Rule:
        with session_factory() as session:
            found = session.scalars(select(Rule)).one()
            session.expunge(found)
            return found

    run([BREAKING_REPLY, GOOD_REPLY])  # run 1: test_add broke, then fixed -> a hint
    assert rule().stage is RuleStage.HINT
    # Its text is searchable in the memory's rules collection too.
    hits = memory.get().search("rules", "test_add calc.py", project="calc")
    assert [hit.payload["rule_id"] for hit in hits] == [rule().id]
    prompts = run([BREAKING_REPLY, GOOD_REPLY])  # run 2: again -> a candidate
    assert rule().stage is RuleStage.CANDIDATE
    assert "## Learned rules" not in "".join(prompts)
    run([BREAKING_REPLY, GOOD_REPLY])  # run 3: one confirmation -> active
    learned = rule()
    assert learned.stage is RuleStage.ACTIVE
    assert "test_add" in learned.text

    prompts = run([GOOD_REPLY])  # run 4: the rule is in the prompt, and the failure stays away
    assert learned.text in prompts[0]
    assert rule().hit_count == 1

    # Runs 5 and 6 meet the failure anyway: two misses in a row retire the rule.
    for _ in range(2):
        prompts = run([BREAKING_REPLY, GOOD_REPLY])
        assert learned.text in prompts[0]
    retired = rule()
    assert (retired.stage, retired.miss_count) == (RuleStage.RETIRED, 2)

    prompts = run([GOOD_REPLY])  # run 7: retired rules never reach a prompt
    assert learned.text not in prompts[0]
    assert "## Learned rules" not in prompts[0]


def test_an_approved_hint_reaches_the_next_prompt(
    settings: Settings,
    session_factory: sessionmaker[Session],
    memory: MemoryProvider,
    tmp_path: Path,
) -> None:
    repo = make_project(tmp_path / "project", {**FILES, "calc.py": CALC_PY})
    plan = make_plan()
    provider = ScriptedProvider([BREAKING_REPLY, GOOD_REPLY])
    harness_with(settings, session_factory, provider, memory).run(plan, repo)
    with session_factory() as session:
        rule_id = session.scalars(select(Rule.id)).one()
        transition_rule(session, rule_id, RuleStage.ACTIVE, reason="useful")
        text = session.get_one(Rule, rule_id).text
    provider = ScriptedProvider([GOOD_REPLY])
    _, state = harness_with(settings, session_factory, provider, memory).run(plan, repo)
    assert state is RunState.DONE_SUCCESS
    assert text in prompt_text(provider.requests[0])
