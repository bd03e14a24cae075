"""HTTP routes of projects: register, list, read."""

from __future__ import annotations

from fastapi import APIRouter, status

from autopack.api.deps import DatabaseDep
from autopack.api.schemas import ERROR_RESPONSES
from autopack.projects import service
from autopack.projects.schemas import ProjectCreate, ProjectRead

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectRead)
def create_project(body: ProjectCreate, db: DatabaseDep) -> ProjectRead:
    """Register a project (409 when the name is taken)."""
    with db.session() as session:
        return ProjectRead.model_validate(service.register_project(session, body))


@router.get("", response_model=list[ProjectRead])
def list_projects(db: DatabaseDep) -> list[ProjectRead]:
    with db.read_session() as session:
        return [ProjectRead.model_validate(p) for p in service.list_projects(session)]


@router.get("/{name}", response_model=ProjectRead)
def get_project(name: str, db: DatabaseDep) -> ProjectRead:
    with db.read_session() as session:
        return ProjectRead.model_validate(service.get_project(session, name))
