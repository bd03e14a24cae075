"""Registering and finding projects."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autopack.errors import ConflictError, NotFoundError
from autopack.projects.models import Project
from autopack.projects.schemas import ProjectCreate

DEFAULT_PROJECT = "default"


def register_project(session: Session, spec: ProjectCreate) -> Project:
    if find_project(session, spec.name) is not None:
        raise ConflictError(f"project {spec.name!r} already exists", details={"name": spec.name})
    project = Project(**spec.model_dump())
    session.add(project)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(
            f"project {spec.name!r} already exists", details={"name": spec.name}
        ) from exc
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.name)))


def find_project(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def get_project_by_pk(session: Session, pk: int) -> Project:
    return session.get_one(Project, pk)


def get_project(session: Session, name: str) -> Project:
    project = find_project(session, name)
    if project is None:
        raise NotFoundError(f"project {name!r} does not exist", details={"name": name})
    return project


def project_for_plan(session: Session, name: str | None) -> Project:
    """The project a new run belongs to: the named one (which must exist), or the `default`
    project, created on first use, for plans that name none (such as v7 requests)."""
    if name is not None and name != DEFAULT_PROJECT:
        return get_project(session, name)
    project = find_project(session, DEFAULT_PROJECT)
    if project is None:
        # Flushed, not committed: it lands with the run, or not at all.
        project = Project(name=DEFAULT_PROJECT, protected_paths=[])
        session.add(project)
        session.flush()
    return project
