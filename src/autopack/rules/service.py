"""Learned rules: which ones apply to a phase (and so reach its builder's prompt), listing them,
and moving them between stages (``transition_rule``, the one place a stage changes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from autopack.db.base import utcnow
from autopack.errors import ConflictError, NotFoundError
from autopack.executor.governance import path_matches
from autopack.llm.routing import normalize_category
from autopack.projects.models import Project
from autopack.rules.models import Rule, RuleStage
from autopack.rules.schemas import RuleRead

logger = logging.getLogger(__name__)

# Every stage change a rule may make: a hint becomes a candidate when its failure recurs in
# another run, or is approved or dropped at once; a candidate is approved (or confirmed often
# enough) and becomes active, or is dropped; an active rule is retired. Nothing comes back from
# retired.
RULE_TRANSITIONS: frozenset[tuple[RuleStage, RuleStage]] = frozenset(
    {
        (RuleStage.HINT, RuleStage.CANDIDATE),
        (RuleStage.HINT, RuleStage.ACTIVE),
        (RuleStage.HINT, RuleStage.RETIRED),
        (RuleStage.CANDIDATE, RuleStage.ACTIVE),
        (RuleStage.CANDIDATE, RuleStage.RETIRED),
        (RuleStage.ACTIVE, RuleStage.RETIRED),
    }
)


class RuleNotFoundError(NotFoundError):
    code = "rule_not_found"


class RuleTransitionRefusedError(ConflictError):
    """A stage change ``RULE_TRANSITIONS`` does not allow."""

    code = "rule_transition_refused"


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


# --- reading ------------------------------------------------------------------------------------


def _to_read(rule: Rule, project: str | None) -> RuleRead:
    return RuleRead(
        id=rule.id,
        project=project,
        scope_pattern=rule.scope_pattern,
        task_categories=list(rule.task_categories or []),
        text=rule.text,
        stage=rule.stage,
        evidence_issue_keys=list(rule.evidence_issue_keys or []),
        hit_count=rule.hit_count,
        miss_count=rule.miss_count,
        issue_key=rule.issue_key,
        learned_from_runs=[str(run) for run in rule.learned_from_runs or []],
        confirmations=rule.confirmations,
        stage_reason=rule.stage_reason,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def list_rules(
    session: Session,
    *,
    stage: RuleStage | None = None,
    project: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[RuleRead], int]:
    """Rules, newest first, optionally of one stage and of one project (by name: that
    project's own rules, not the global ones); and how many match in all."""
    where = []
    if stage is not None:
        where.append(Rule.stage == stage)
    if project is not None:
        where.append(Project.name == project)
    base = (
        select(Rule, Project.name).outerjoin(Project, Rule.project_pk == Project.id).where(*where)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Rule.id.desc()).limit(limit).offset(offset)).all()
    return [_to_read(rule, name) for rule, name in rows], int(total)


def read_rule(session: Session, rule_id: int) -> RuleRead:
    rule = get_rule(session, rule_id)
    name = (
        session.scalar(select(Project.name).where(Project.id == rule.project_pk))
        if rule.project_pk is not None
        else None
    )
    return _to_read(rule, name)


def get_rule(session: Session, rule_id: int) -> Rule:
    rule = session.get(Rule, rule_id)
    if rule is None:
        raise RuleNotFoundError(f"rule {rule_id} does not exist", details={"rule_id": rule_id})
    return rule


# --- stage changes ------------------------------------------------------------------------------


def transition_rule(
    session: Session, rule_id: int, to: RuleStage, *, reason: str | None = None
) -> Rule:
    """Move a rule to the stage ``to`` (see ``move_rule``) and commit."""
    rule = get_rule(session, rule_id)
    move_rule(session, rule, to, reason=reason)
    session.commit()
    session.refresh(rule)
    return rule


def move_rule(session: Session, rule: Rule, to: RuleStage, *, reason: str | None = None) -> None:
    """Move ``rule`` to the stage ``to`` if ``RULE_TRANSITIONS`` allows it from its current
    one, keeping ``reason`` as its ``stage_reason``; the caller commits. The move is a
    conditional update on the stage the caller saw, so of two concurrent changes only one wins;
    the other is refused like a disallowed move (409 ``rule_transition_refused``, naming both
    stages)."""
    current = RuleStage(rule.stage)
    if (current, to) not in RULE_TRANSITIONS:
        raise _refused(rule.id, current, to)
    result = session.execute(
        update(Rule)
        .where(Rule.id == rule.id, Rule.stage == current)
        .values(stage=to, stage_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(rule)
        raise _refused(rule.id, RuleStage(rule.stage), to)
    session.expire(rule, ["stage", "stage_reason", "updated_at"])
    logger.info(
        "rule %s: %s -> %s%s",
        rule.id,
        current.value,
        to.value,
        f" ({reason})" if reason else "",
        extra={"rule_id": rule.id, "from": current.value, "to": to.value, "reason": reason},
    )


def _refused(rule_id: int, current: RuleStage, requested: RuleStage) -> RuleTransitionRefusedError:
    return RuleTransitionRefusedError(
        f"rule {rule_id} cannot go from {current.value} to {requested.value}",
        details={"rule_id": rule_id, "current": current.value, "requested": requested.value},
    )
