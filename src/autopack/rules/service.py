"""Learned rules: which ones apply to a phase (and so reach its builder's prompt)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from autopack.executor.governance import path_matches
from autopack.llm.routing import normalize_category
from autopack.rules.models import Rule, RuleStage


def rules_for_phase(
    session: Session, project_pk: int, task_category: str | None, paths: Sequence[str]
) -> list[Rule]:
    """The ACTIVE rules of the project (or global ones) that match the phase: their task
    categories include the phase's (or name none), and their scope pattern covers one of the
    phase's paths (or is unset). Candidate and retired rules never reach a prompt."""
    rules = session.scalars(
        select(Rule)
        .where(
            Rule.stage == RuleStage.ACTIVE,
            or_(Rule.project_pk == project_pk, Rule.project_pk.is_(None)),
        )
        .order_by(Rule.hit_count.desc(), Rule.id)
    ).all()
    category = normalize_category(task_category) if task_category else None
    return [
        rule for rule in rules if _category_matches(rule, category) and _scope_matches(rule, paths)
    ]


def _category_matches(rule: Rule, category: str | None) -> bool:
    categories = [normalize_category(str(item)) for item in rule.task_categories or []]
    return not categories or (category is not None and category in categories)


def _scope_matches(rule: Rule, paths: Sequence[str]) -> bool:
    if not rule.scope_pattern:
        return True
    pattern = rule.scope_pattern
    return any(path_matches(pattern, path) or path_matches(path, pattern) for path in paths)
