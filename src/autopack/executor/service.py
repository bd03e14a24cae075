"""Submitting a plan for a repository and executing it in this process (``autopack run`` and
``autopack demo``; ``autopack serve`` runs the same RunExecutor in background threads)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConflictError
from autopack.events.service import append_event
from autopack.executor.runner import ExecutorEnvironment, RunExecutor
from autopack.executor.workspace import Workspace, promote
from autopack.llm.routing import Router
from autopack.plans.models import Plan
from autopack.projects.schemas import ProjectCreate
from autopack.projects.service import find_project, get_project_by_pk, register_project
from autopack.runs.models import Cleanliness
from autopack.runs.service import create_run, get_run
from autopack.runs.states import RunState
from autopack.settings import Settings


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


def submit(
    sessions: sessionmaker[Session], plan: Plan, repo: str, router: Router | None = None
) -> str:
    """Create the run of ``plan`` for the git repository ``repo``; returns its run id. With a
    ``router``, the plan's model overrides are checked against it first (nothing is written
    when they name unknown models)."""
    if router is not None:
        router.parse_overrides(plan.run.models, path="run.models")
    name = project_name_for(plan, repo)
    with sessions() as session:
        ensure_project(session, name, repo)
        run = create_run(session, plan.model_copy(update={"project": name}))
        return run.run_id


def execute(env: ExecutorEnvironment, run_id: str) -> RunState:
    return RunExecutor(env, run_id).execute()


class PromotionRefusedError(ConflictError):
    code = "promotion_refused"


def promote_run(
    sessions: sessionmaker[Session], settings: Settings, run_id: str, target: str | None = None
) -> str:
    """Bring a DONE_SUCCESS run whose tiers are all clean into ``target`` (the project's default
    branch unless given) of its repository; returns the branch's new commit. The one operation
    that writes the user's repository, and only on request."""
    with sessions() as session:
        run = get_run(session, run_id)
        if run.state is not RunState.DONE_SUCCESS:
            raise PromotionRefusedError(
                f"run {run_id} is {run.state.value}; only a DONE_SUCCESS run can be promoted",
                details={"run_id": run_id, "state": run.state.value},
            )
        not_clean = [
            tier.tier_id for tier in run.tiers if tier.cleanliness is not Cleanliness.CLEAN
        ]
        if not_clean:
            raise PromotionRefusedError(
                f"run {run_id} has tiers that are not clean: {', '.join(not_clean)}",
                details={"run_id": run_id, "not_clean": not_clean},
            )
        project = get_project_by_pk(session, run.project_pk)
        if not project.repo:
            raise PromotionRefusedError(f"project {project.name!r} has no repository")
        branch = target or project.default_branch
        workspace = Workspace.open(settings.runs_dir / run_id / "workspace")
        commit = promote(workspace, project.repo, branch)
        append_event(session, run, "run.promoted", {"branch": branch, "commit": commit})
        session.commit()
        return commit
