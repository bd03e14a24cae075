"""HTTP route of the planner: draft a plan from an idea."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response

from autopack.api.deps import DatabaseDep, SettingsDep
from autopack.api.responses import json_response
from autopack.api.schemas import ERROR_RESPONSES, ErrorEnvelope
from autopack.errors import InvalidInputError
from autopack.executor.environment import build_provider
from autopack.planner import service
from autopack.planner.schemas import PlanDraftRead, PlanDraftRequest
from autopack.projects.service import get_project

router = APIRouter(
    prefix="/plans",
    tags=["plans"],
    responses={
        **ERROR_RESPONSES,
        500: {"model": ErrorEnvelope, "description": "The model provider is misconfigured (a key)"},
        502: {"model": ErrorEnvelope, "description": "The model provider failed"},
    },
)


@router.post("/draft", response_model=PlanDraftRead)
def draft_plan(
    body: PlanDraftRequest, request: Request, db: DatabaseDep, settings: SettingsDep
) -> Response:
    """Draft a plan for an idea with the planner model, from a map of the repository. Blocks
    while the model works; 422 ``plan_draft_rejected`` when its plan was invalid twice."""
    if body.project is not None:
        with db.read_session() as session:
            project = get_project(session, body.project)
            repo, name = project.repo, project.name
        if not repo or not Path(repo).is_dir():
            raise InvalidInputError(
                f"project {name!r} has no local repository to plan for (repo: {repo!r}); "
                "give `repo_path` instead",
                details=[{"loc": "body.project", "message": "no local repository"}],
            )
    else:
        repo, name = body.repo_path, None
        if repo is None or not Path(repo).is_dir():
            raise InvalidInputError(
                f"repo_path {repo!r} is not a directory on the server",
                details=[{"loc": "body.repo_path", "message": "not a directory"}],
            )
    # The session above is closed: no transaction is open while the model thinks.
    draft = service.draft_plan(
        body.idea,
        Path(repo),
        provider=build_provider(settings, request.app.state.router),
        router=request.app.state.router,
        complexity=body.complexity,
        project=name,
        sessions=db.session,
    )
    return json_response(PlanDraftRead.from_draft(draft))
