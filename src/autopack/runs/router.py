"""HTTP routes of runs: create (plan body, JSON or YAML), list, read, cancel, retry a phase,
read a phase's attempts, promote."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from autopack.api.deps import DatabaseDep, SettingsDep
from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, SQL_BIGINT_MAX
from autopack.executor import service as executor_service
from autopack.llm.routing import RoutingError
from autopack.plans.loader import MalformedPlanError, PlanValidationError, load_plan
from autopack.plans.models import Plan
from autopack.runs import service
from autopack.runs.schemas import (
    AttemptRead,
    CancelRequest,
    Page,
    PhaseRead,
    PromoteRequest,
    PromotionRead,
    RunDetail,
    RunSummary,
)
from autopack.runs.states import RunState
from autopack.runs.views import RunFilter, list_run_summaries, read_run_detail

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")

PLAN_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A plan (see docs/plans.md) as JSON, or as YAML with a YAML content type",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Plan"}},
            # The same document, written in YAML: a media type's schema describes the data,
            # not the text it is serialized to (a bare string is no plan).
            "application/yaml": {"schema": {"$ref": "#/components/schemas/Plan"}},
        },
    }
}


async def plan_body(request: Request) -> Plan:
    """Read and validate the plan in the request body (JSON, or YAML by content type)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in YAML_TYPES:
        fmt = "yaml"
    elif content_type in ("application/json", "") or content_type.endswith("+json"):
        fmt = "json"
    else:
        raise MalformedPlanError(
            f"unsupported content type {content_type!r}; send application/json or application/yaml"
        )
    plan = load_plan(await request.body(), fmt=fmt)
    try:
        request.app.state.router.parse_overrides(plan.run.models, path="run.models")
    except RoutingError as exc:
        raise PlanValidationError(f"invalid plan: {exc.message}", details=exc.details) from None
    return plan


PlanBody = Annotated[Plan, Depends(plan_body)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RunDetail,
    openapi_extra=PLAN_REQUEST_BODY,
)
def create_run(
    plan: PlanBody,
    db: DatabaseDep,
    project: Annotated[
        str | None,
        Query(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            max_length=128,
            description="Run the plan in this registered project, whatever the plan names",
        ),
    ] = None,
) -> Response:
    """Create a QUEUED run from a plan. 409 when the run id is taken; 404 when the project does
    not exist; nothing is written when the plan is rejected."""
    if project is not None:
        plan = plan.model_copy(update={"project": project})
    with db.session() as session:
        run = service.create_run(session, plan)
        return json_response(read_run_detail(session, run.run_id), status.HTTP_201_CREATED)


@router.post(
    "/start",
    status_code=status.HTTP_201_CREATED,
    response_model=RunDetail,
    openapi_extra=PLAN_REQUEST_BODY,
)
def start_run(plan: PlanBody, db: DatabaseDep) -> Response:
    """The original system's v7 route: the same as ``POST /api/runs``."""
    return create_run(plan, db)


@router.get("", response_model=Page[RunSummary])
def list_runs(
    db: DatabaseDep,
    state: RunState | None = None,
    project: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=SQL_BIGINT_MAX)] = 0,
) -> Response:
    """Runs, newest first, filtered by state and project."""
    with db.read_session() as session:
        items, total = list_run_summaries(
            session, RunFilter(state=state, project=project), limit=limit, offset=offset
        )
    return json_response(Page[RunSummary](items=items, total=total, limit=limit, offset=offset))


@router.get("/{run_id}", response_model=RunDetail)
def get_run(run_id: str, db: DatabaseDep) -> Response:
    """A run with its tiers and phases."""
    with db.read_session() as session:
        return json_response(read_run_detail(session, run_id))


@router.post("/{run_id}/cancel", response_model=RunDetail)
def cancel_run(
    run_id: str, db: DatabaseDep, body: Annotated[CancelRequest | None, Body()] = None
) -> Response:
    """Cancel a queued, running or paused run (409 naming the state otherwise)."""
    with db.session() as session:
        service.cancel_run(session, run_id, reason=body.reason if body else None)
        return json_response(read_run_detail(session, run_id))


@router.post("/{run_id}/phases/{phase_id}/retry", response_model=PhaseRead)
def retry_phase(run_id: str, phase_id: str, db: DatabaseDep) -> Response:
    """Re-queue a FAILED phase; a run that its failure ended is reopened."""
    with db.session() as session:
        service.retry_phase(session, run_id, phase_id)
        detail = read_run_detail(session, run_id)
    phase = next(p for tier in detail.tiers for p in tier.phases if p.phase_id == phase_id)
    return json_response(phase)


@router.get("/{run_id}/phases/{phase_id}/attempts", response_model=list[AttemptRead])
def list_phase_attempts(run_id: str, phase_id: str, db: DatabaseDep) -> list[AttemptRead]:
    """The phase's attempts in order, each with its diff and test output (redacted, capped)."""
    with db.read_session() as session:
        return service.list_phase_attempts(session, run_id, phase_id)


@router.post("/{run_id}/promote", response_model=PromotionRead)
def promote_run(
    run_id: str,
    db: DatabaseDep,
    settings: SettingsDep,
    body: Annotated[PromoteRequest | None, Body()] = None,
) -> PromotionRead:
    """Bring a DONE_SUCCESS run whose tiers are all clean into a branch of its project's
    repository (the default branch unless `branch` is given): 409 `promotion_refused`
    otherwise, or when git refuses (a dirty checked-out branch, a merge conflict)."""
    promotion = executor_service.promote_run(
        db.session, settings, run_id, body.branch if body else None
    )
    return PromotionRead(run_id=promotion.run_id, branch=promotion.branch, commit=promotion.commit)
