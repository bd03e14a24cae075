"""HTTP routes of learned rules: list them, approve a candidate, retire one. Changes need the
write scope (every POST under /api does, centrally)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from autopack.api.deps import DatabaseDep
from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, NO_NUL, SQL_BIGINT_MAX
from autopack.rules import service
from autopack.rules.models import RuleStage
from autopack.rules.schemas import RuleRead, RuleStageChange
from autopack.runs.schemas import Page

router = APIRouter(prefix="/rules", tags=["rules"], responses=ERROR_RESPONSES)

RuleId = Annotated[int, Path(ge=1, le=SQL_BIGINT_MAX, description="The rule's id")]
StageChange = Annotated[RuleStageChange | None, Body()]


@router.get("", response_model=Page[RuleRead])
def list_rules(
    db: DatabaseDep,
    stage: RuleStage | None = None,
    project: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=SQL_BIGINT_MAX)] = 0,
) -> Response:
    """Learned rules, newest first, filtered by stage and project (the project's own rules)."""
    with db.read_session() as session:
        items, total = service.list_rules(
            session, stage=stage, project=project, limit=limit, offset=offset
        )
    return json_response(Page[RuleRead](items=items, total=total, limit=limit, offset=offset))


@router.post("/{rule_id}/approve", response_model=RuleRead)
def approve_rule(rule_id: RuleId, db: DatabaseDep, body: StageChange = None) -> Response:
    """Make a candidate rule active: from now on it reaches the prompts of the phases it
    matches. 409 `rule_transition_refused` unless it is a candidate."""
    with db.session() as session:
        service.transition_rule(
            session, rule_id, RuleStage.ACTIVE, reason=body.reason if body else None
        )
        return json_response(service.read_rule(session, rule_id))


@router.post("/{rule_id}/retire", response_model=RuleRead)
def retire_rule(rule_id: RuleId, db: DatabaseDep, body: StageChange = None) -> Response:
    """Retire a candidate or active rule: it never reaches a prompt again. 409
    `rule_transition_refused` when it is retired already."""
    with db.session() as session:
        service.transition_rule(
            session, rule_id, RuleStage.RETIRED, reason=body.reason if body else None
        )
        return json_response(service.read_rule(session, rule_id))
