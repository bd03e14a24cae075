"""How rules are learned and unlearned (ARCHITECTURE §1: recurring issues become rules that
later runs are told about).

- A failure that a later attempt of the same phase fixed becomes a **hint**: what failed and what
  fixed it, one rule per project and issue key.
- When another run fixes the same failure again, the hint becomes a **candidate**.
- A candidate becomes **active** when approved (API, CLI, dashboard) or, if
  ``rules_activate_after_confirmations`` is N > 0, once N more runs have fixed the failure again.
  Only active rules reach a builder's prompt (``service.rules_for_phase``).
- Each phase that had an active rule in its prompt counts for it (a hit) or against it (a miss:
  the phase still met the rule's failure). ``rules_retire_after_misses`` misses in a row retire
  it: a rule that does not prevent its failure only costs prompt room.

Every stage change goes through ``service.move_rule``; the caller commits.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autopack.db.base import utcnow
from autopack.issues.models import IssueSource
from autopack.rules.models import Rule, RuleStage
from autopack.rules.service import move_rule

logger = logging.getLogger(__name__)

# Failures whose fix says something about the project. A builder's malformed reply or a budget
# stop is not: its "fix" is just another try.
LEARNABLE_SOURCES = frozenset({IssueSource.TESTS, IssueSource.GOVERNANCE, IssueSource.AUDITOR})
MAX_FAILURE_CHARS = 240
MAX_ADDED_LINES = 3
MAX_LINE_CHARS = 100
MAX_RUNS_KEPT = 50


@dataclass(frozen=True)
class FixedFailure:
    """A failure an earlier attempt of a phase met, fixed by the attempt that was committed."""

    issue_key: str
    source: IssueSource
    message: str


@dataclass(frozen=True)
class Fix:
    """What fixed it: the committed change of the phase."""

    run_id: str
    phase_name: str
    task_category: str | None
    paths: Sequence[str]
    diff: str


def learn_from_fix(
    session: Session,
    project_pk: int,
    failures: Iterable[FixedFailure],
    fix: Fix,
    *,
    activate_after: int,
) -> list[Rule]:
    """Record that ``fix`` fixed ``failures``: new hints, hints promoted to candidates,
    candidates confirmed (and activated after ``activate_after`` confirmations when it is > 0).
    Returns the rules touched."""
    touched: list[Rule] = []
    for failure in failures:
        if failure.source not in LEARNABLE_SOURCES:
            continue
        rule = _rule_for(session, project_pk, failure.issue_key)
        if rule is None:
            rule = _new_hint(session, project_pk, failure, fix)
            if rule is not None:
                touched.append(rule)
            continue
        runs = [str(run) for run in rule.learned_from_runs or []]
        if fix.run_id in runs or rule.stage in (RuleStage.ACTIVE, RuleStage.RETIRED):
            # Fixed again in the same run, or the rule is past learning: hits and misses
            # (``record_outcomes``) decide an active rule's fate.
            continue
        rule.learned_from_runs = [*runs, fix.run_id][-MAX_RUNS_KEPT:]
        rule.updated_at = utcnow()
        if rule.stage is RuleStage.HINT:
            # The failure recurred in another run, and was fixed there too.
            rule.text = rule_text(failure, fix)
            move_rule(
                session,
                rule,
                RuleStage.CANDIDATE,
                reason=f"the failure recurred in run {fix.run_id} and was fixed again",
            )
        else:
            rule.confirmations += 1
            if activate_after > 0 and rule.confirmations >= activate_after:
                move_rule(
                    session,
                    rule,
                    RuleStage.ACTIVE,
                    reason=f"confirmed by {rule.confirmations} more runs (last {fix.run_id})",
                )
        touched.append(rule)
    session.flush()
    return touched


def record_outcomes(
    session: Session,
    rule_ids: Collection[int],
    failure_keys: Collection[str],
    *,
    retire_after: int,
) -> None:
    """A phase that had the rules ``rule_ids`` in its prompt has ended, having met the failures
    ``failure_keys`` (issue keys). A rule whose failure is among them missed; the others hit.
    An active rule that misses ``retire_after`` times in a row is retired."""
    if not rule_ids:
        return
    rules = session.scalars(select(Rule).where(Rule.id.in_(rule_ids))).all()
    for rule in rules:
        missed = rule.issue_key is not None and rule.issue_key in failure_keys
        # Counters move by update expressions: phases of other runs may count at the same time.
        values = (
            {
                "miss_count": Rule.miss_count + 1,
                "misses_in_a_row": Rule.misses_in_a_row + 1,
            }
            if missed
            else {"hit_count": Rule.hit_count + 1, "misses_in_a_row": 0}
        )
        session.execute(
            update(Rule)
            .where(Rule.id == rule.id)
            .values(**values, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.refresh(rule)
        if (
            missed
            and retire_after > 0
            and rule.stage is RuleStage.ACTIVE
            and rule.misses_in_a_row >= retire_after
        ):
            move_rule(
                session,
                rule,
                RuleStage.RETIRED,
                reason=f"its failure followed it {rule.misses_in_a_row} times in a row",
            )


def _rule_for(session: Session, project_pk: int, issue_key: str) -> Rule | None:
    return session.scalar(
        select(Rule).where(Rule.project_pk == project_pk, Rule.issue_key == issue_key)
    )


def _new_hint(session: Session, project_pk: int, failure: FixedFailure, fix: Fix) -> Rule | None:
    rule = Rule(
        project_pk=project_pk,
        issue_key=failure.issue_key,
        scope_pattern=scope_of(fix.paths),
        task_categories=[fix.task_category] if fix.task_category else [],
        text=rule_text(failure, fix),
        stage=RuleStage.HINT,
        evidence_issue_keys=[failure.issue_key],
        learned_from_runs=[fix.run_id],
        confirmations=0,
        misses_in_a_row=0,
        hit_count=0,
        miss_count=0,
        stage_reason=f"fixed in run {fix.run_id}, phase {fix.phase_name!r}",
    )
    try:
        with session.begin_nested():
            session.add(rule)
    except IntegrityError:
        # Another run learned the same failure a moment ago: its hint stands.
        return _rule_for(session, project_pk, failure.issue_key)
    logger.info("learned a hint from %s", failure.issue_key, extra={"issue_key": failure.issue_key})
    return rule


def scope_of(paths: Sequence[str]) -> str | None:
    """The directory all ``paths`` share (a single file: itself); None when they share none."""
    clean = sorted({path.strip("/") for path in paths if path.strip("/")})
    if not clean:
        return None
    if len(clean) == 1:
        return clean[0]
    common = posixpath.commonpath(clean)
    return common or None


def rule_text(failure: FixedFailure, fix: Fix) -> str:
    """One line for a prompt: what failed, and what the change that fixed it did."""
    what = " ".join(failure.message.split())
    if len(what) > MAX_FAILURE_CHARS:
        what = what[: MAX_FAILURE_CHARS - 1] + "…"
    files = ", ".join(f"`{path}`" for path in list(fix.paths)[:4])
    more = f" and {len(fix.paths) - 4} more" if len(fix.paths) > 4 else ""
    text = f"{failure.source.value} failed: {what}. The fix changed {files}{more}"
    added = _added_lines(fix.diff)
    if added:
        text += ", adding " + "; ".join(f"`{line}`" for line in added)
    return text + ". Check for this before replying."


def _added_lines(diff: str) -> list[str]:
    lines: list[str] = []
    for line in diff.splitlines():
        if not line.startswith("+") or line.startswith("+++"):
            continue
        content = line[1:].strip()
        if len(content) < 4 or content.startswith(("#", '"""', "//")):
            continue
        lines.append(content if len(content) <= MAX_LINE_CHARS else content[:MAX_LINE_CHARS] + "…")
        if len(lines) == MAX_ADDED_LINES:
            break
    return lines
