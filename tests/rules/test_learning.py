"""How rules are learned: a failure fixed in a run is a hint, a candidate once another run fixes
it again, active after N confirmations (or an approval), and retired when its failure keeps
following it. Against the real database, through the functions the executor calls."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.issues.models import IssueSource
from autopack.projects.models import Project
from autopack.rules.learning import (
    Fix,
    FixedFailure,
    learn_from_fix,
    record_outcomes,
    rule_text,
    scope_of,
)
from autopack.rules.models import Rule, RuleStage
from autopack.rules.service import RuleTransitionRefusedError, transition_rule

KEY = "tests:3f2a9c1d0b7e"
FAILURE = FixedFailure(KEY, IssueSource.TESTS, "1 new failure: tests/test_calc.py::test_add")
DIFF = (
    "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n"
    "-    return a - b\n+    return a + b\n"
)


def fix(run_id: str) -> Fix:
    return Fix(run_id, "Phase p1", "feature", ["calc.py"], DIFF)


@pytest.fixture
def project_pk(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        project = Project(name="calc", repo="/srv/calc")
        session.add(project)
        session.commit()
        return project.id


def learn(
    sessions: sessionmaker[Session],
    project_pk: int,
    run_id: str,
    failures: list[FixedFailure] | None = None,
    activate_after: int = 0,
) -> None:
    with sessions() as session:
        learn_from_fix(
            session,
            project_pk,
            failures if failures is not None else [FAILURE],
            fix(run_id),
            activate_after=activate_after,
        )
        session.commit()


def the_rule(sessions: sessionmaker[Session], key: str = KEY) -> Rule:
    with sessions() as session:
        rule = session.scalars(select(Rule).where(Rule.issue_key == key)).one()
        session.expunge(rule)
        return rule


def test_a_fixed_failure_is_a_hint_then_a_candidate_when_another_run_fixes_it_again(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    learn(session_factory, project_pk, "run-1")
    rule = the_rule(session_factory)
    assert rule.stage is RuleStage.HINT
    assert rule.project_pk == project_pk
    assert rule.learned_from_runs == ["run-1"]
    assert rule.scope_pattern == "calc.py"
    assert rule.task_categories == ["feature"]
    assert "tests/test_calc.py::test_add" in rule.text
    assert "`return a + b`" in rule.text  # what the fix added

    # The same run fixing it again (another phase) teaches nothing new.
    learn(session_factory, project_pk, "run-1")
    assert the_rule(session_factory).stage is RuleStage.HINT

    learn(session_factory, project_pk, "run-2")
    rule = the_rule(session_factory)
    assert rule.stage is RuleStage.CANDIDATE
    assert rule.learned_from_runs == ["run-1", "run-2"]
    assert rule.confirmations == 0
    assert rule.stage_reason is not None and "run-2" in rule.stage_reason


def test_a_candidate_becomes_active_after_n_confirmations_when_so_configured(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    for run in ("run-1", "run-2", "run-3"):
        learn(session_factory, project_pk, run, activate_after=2)
    rule = the_rule(session_factory)
    assert (rule.stage, rule.confirmations) == (RuleStage.CANDIDATE, 1)
    learn(session_factory, project_pk, "run-4", activate_after=2)
    rule = the_rule(session_factory)
    assert (rule.stage, rule.confirmations) == (RuleStage.ACTIVE, 2)
    assert "confirmed by 2 more runs" in (rule.stage_reason or "")


def test_with_activation_by_approval_only_a_candidate_waits_for_a_human(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    for number in range(1, 7):
        learn(session_factory, project_pk, f"run-{number}", activate_after=0)
    rule = the_rule(session_factory)
    assert (rule.stage, rule.confirmations) == (RuleStage.CANDIDATE, 4)
    with session_factory() as session:
        transition_rule(session, rule.id, RuleStage.ACTIVE, reason="reads right")
    rule = the_rule(session_factory)
    assert (rule.stage, rule.stage_reason) == (RuleStage.ACTIVE, "reads right")


def test_failures_that_say_nothing_about_the_project_are_not_learned(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    noise = [
        FixedFailure("builder:abc", IssueSource.BUILDER, "SEARCH block matched nowhere"),
        FixedFailure("budget:run:tokens", IssueSource.BUDGET, "token cap reached"),
        FixedFailure("environment:x", IssueSource.ENVIRONMENT, "git failed"),
    ]
    learn(session_factory, project_pk, "run-1", failures=noise)
    with session_factory() as session:
        assert session.scalars(select(Rule)).all() == []


def test_each_project_learns_its_own_rule_for_the_same_failure(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    with session_factory() as session:
        other = Project(name="other", repo="/srv/other")
        session.add(other)
        session.commit()
        other_pk = other.id
    learn(session_factory, project_pk, "run-1")
    learn(session_factory, other_pk, "run-2")
    with session_factory() as session:
        stages = {
            rule.project_pk: rule.stage
            for rule in session.scalars(select(Rule).where(Rule.issue_key == KEY))
        }
    assert stages == {project_pk: RuleStage.HINT, other_pk: RuleStage.HINT}


def active_rule(sessions: sessionmaker[Session], project_pk: int, key: str = KEY) -> int:
    with sessions() as session:
        rule = Rule(
            project_pk=project_pk,
            issue_key=key,
            text="check add()",
            stage=RuleStage.ACTIVE,
            evidence_issue_keys=[key],
        )
        session.add(rule)
        session.commit()
        return rule.id


def outcome(sessions: sessionmaker[Session], rule_id: int, met: set[str], retire_after: int = 3):  # type: ignore[no-untyped-def]
    with sessions() as session:
        record_outcomes(session, {rule_id}, met, retire_after=retire_after)
        session.commit()


def test_an_active_rule_counts_hits_and_misses_and_retires_after_misses_in_a_row(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    rule_id = active_rule(session_factory, project_pk)
    outcome(session_factory, rule_id, set())  # followed, and the failure did not come: a hit
    outcome(session_factory, rule_id, {KEY})  # the failure came anyway: a miss
    outcome(session_factory, rule_id, {KEY})
    outcome(session_factory, rule_id, {"tests:other"})  # another failure: still a hit
    rule = the_rule(session_factory)
    assert (rule.hit_count, rule.miss_count, rule.misses_in_a_row) == (2, 2, 0)
    assert rule.stage is RuleStage.ACTIVE

    for _ in range(2):
        outcome(session_factory, rule_id, {KEY})
    assert the_rule(session_factory).stage is RuleStage.ACTIVE
    outcome(session_factory, rule_id, {KEY})
    rule = the_rule(session_factory)
    assert (rule.stage, rule.miss_count, rule.misses_in_a_row) == (RuleStage.RETIRED, 5, 3)
    assert "3 times in a row" in (rule.stage_reason or "")


def test_retiring_by_misses_can_be_turned_off(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    rule_id = active_rule(session_factory, project_pk)
    for _ in range(5):
        outcome(session_factory, rule_id, {KEY}, retire_after=0)
    rule = the_rule(session_factory)
    assert (rule.stage, rule.misses_in_a_row) == (RuleStage.ACTIVE, 5)


def test_a_retired_rule_is_not_learned_again_and_cannot_come_back(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    learn(session_factory, project_pk, "run-1")
    rule_id = the_rule(session_factory).id
    with session_factory() as session:
        transition_rule(session, rule_id, RuleStage.RETIRED, reason="wrong advice")
    learn(session_factory, project_pk, "run-2")
    rule = the_rule(session_factory)
    assert (rule.stage, rule.learned_from_runs) == (RuleStage.RETIRED, ["run-1"])
    with session_factory() as session, pytest.raises(RuleTransitionRefusedError):
        transition_rule(session, rule_id, RuleStage.ACTIVE)


def test_a_hint_can_be_approved_at_once(
    session_factory: sessionmaker[Session], project_pk: int
) -> None:
    learn(session_factory, project_pk, "run-1")
    rule_id = the_rule(session_factory).id
    with session_factory() as session:
        transition_rule(session, rule_id, RuleStage.ACTIVE)
    assert the_rule(session_factory).stage is RuleStage.ACTIVE


@pytest.mark.parametrize(
    ("paths", "scope"),
    [
        (["calc.py"], "calc.py"),
        (["src/shop/cart.py", "src/shop/tests/test_cart.py"], "src/shop"),
        (["src/a.py", "tests/test_a.py"], None),
        ([], None),
    ],
)
def test_a_rule_is_scoped_to_what_its_fix_touched(paths: list[str], scope: str | None) -> None:
    assert scope_of(paths) == scope


def test_rule_text_is_one_line_and_bounded() -> None:
    long = FixedFailure(KEY, IssueSource.TESTS, "boom\n" + "x" * 1000)
    many = Fix("run-1", "p", None, [f"f{i}.py" for i in range(9)], DIFF)
    text = rule_text(long, many)
    assert "\n" not in text
    assert len(text) < 700
    assert "and 5 more" in text
