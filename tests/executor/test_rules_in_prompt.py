"""Learned rules really reach the builder's prompt — the active ones matching the phase, and
never candidate or retired ones (the original system stored rules that no prompt ever saw)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.projects.models import Project
from autopack.rules.models import Rule, RuleStage
from autopack.runs.states import RunState
from autopack.settings import Settings
from tests.executor.support import (
    GOOD_REPLY,
    Harness,
    ScriptedProvider,
    make_plan,
    make_project,
    prompt_text,
    venv_first_on_path,
)


@pytest.fixture(autouse=True)
def _venv_python(monkeypatch: pytest.MonkeyPatch) -> None:
    venv_first_on_path(monkeypatch)


def test_active_matching_rules_reach_the_prompt_and_others_do_not(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    provider = ScriptedProvider([GOOD_REPLY])
    harness = Harness(settings, session_factory, provider)
    plan = make_plan()
    run_id = harness.submit(plan, make_project(tmp_path / "project"))
    with session_factory() as session:
        project = session.scalars(select(Project).where(Project.name == "calc")).one()
        rules = {
            "ACTIVE-FOR-FEATURES: keep functions pure": (RuleStage.ACTIVE, ["feature"], None),
            "ACTIVE-GLOBAL: never print from library code": (RuleStage.ACTIVE, [], None),
            "ACTIVE-FOR-CALC: calc.py functions take two numbers": (
                RuleStage.ACTIVE,
                [],
                "calc.py",
            ),
            "RETIRED: use tabs": (RuleStage.RETIRED, ["feature"], None),
            "CANDIDATE: maybe add docstrings": (RuleStage.CANDIDATE, ["feature"], None),
            "ACTIVE-OTHER-CATEGORY: migrations need downgrades": (
                RuleStage.ACTIVE,
                ["migration"],
                None,
            ),
            "ACTIVE-OTHER-SCOPE: web/ uses templates": (RuleStage.ACTIVE, [], "web/**"),
        }
        for text, (stage, categories, scope) in rules.items():
            session.add(
                Rule(
                    project_pk=project.id,
                    text=text,
                    stage=stage,
                    task_categories=categories,
                    scope_pattern=scope,
                    evidence_issue_keys=[],
                )
            )
        session.commit()

    from autopack.executor.service import execute

    assert execute(harness.env, run_id) is RunState.DONE_SUCCESS
    prompt = prompt_text(provider.requests[0])
    for text, (stage, _categories, _scope) in rules.items():
        should_appear = stage is RuleStage.ACTIVE and text.startswith(
            ("ACTIVE-FOR-FEATURES", "ACTIVE-GLOBAL", "ACTIVE-FOR-CALC")
        )
        assert (text in prompt) is should_appear, text
