"""Submitting a plan for a repository and executing it in this process (``autopack run`` and
``autopack demo``; ``autopack serve`` runs the same RunExecutor in background threads)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConflictError
from autopack.executor.runner import ExecutorEnvironment, RunExecutor
from autopack.plans.models import Plan
from autopack.projects.schemas import ProjectCreate
from autopack.projects.service import find_project, register_project
from autopack.runs.service import create_run
from autopack.runs.states import RunState


def project_name_for(plan: Plan, repo: str) -> str:
    if plan.project:
        return plan.project
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(repo.rstrip("/")).name).strip("-.")
    return name or "project"


def ensure_project(session: Session, name: str, repo: str, test_cmd: str | None = None) -> None:
    """The project ``name`` for ``repo``: registered now if new; refused if it is registered
    for another repository (runs of one project must share one)."""
    existing = find_project(session, name)
    if existing is None:
        register_project(session, ProjectCreate(name=name, repo=repo, default_test_cmd=test_cmd))
        return
    if existing.repo != repo:
        raise ConflictError(
            f"project {name!r} is registered for {existing.repo!r}, not {repo!r}; name another "
            "project in the plan (`project:`)",
            details={"project": name, "repo": existing.repo},
        )


def submit(sessions: sessionmaker[Session], plan: Plan, repo: str) -> str:
    """Create the run of ``plan`` for the git repository ``repo``; returns its run id."""
    name = project_name_for(plan, repo)
    with sessions() as session:
        ensure_project(session, name, repo)
        run = create_run(session, plan.model_copy(update={"project": name}))
        return run.run_id


def execute(env: ExecutorEnvironment, run_id: str) -> RunState:
    return RunExecutor(env, run_id).execute()
