"""Submitting a plan for a repository and executing it in this process (``autopack run`` and
``autopack demo``; ``autopack serve`` runs the same RunExecutor in background threads)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import AutopackError, ConflictError, InvalidInputError
from autopack.events.service import append_event
from autopack.executor.artifacts import redact
from autopack.executor.runner import ExecutorEnvironment, RunExecutor
from autopack.executor.workspace import InvalidBranchError, Workspace, WorkspaceError, promote
from autopack.llm.routing import Router
from autopack.plans.models import Plan
from autopack.projects.schemas import ProjectCreate
from autopack.projects.service import find_project, get_project_by_pk, register_project
from autopack.runs import execution
from autopack.runs.service import create_run, get_run, promotion_refusal
from autopack.runs.states import PhaseState, RunState, transition_phase, transition_run
from autopack.settings import Settings

logger = logging.getLogger(__name__)


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


# An executor that fails this many times in a row on one run (an unexpected exception, with no
# phase completed in between) ends the run instead of leaving it to be resumed again forever.
EXECUTOR_FAILURES_LIMIT = 3


def execute_if_free(env: ExecutorEnvironment, run_id: str) -> RunState | None:
    """Execute ``run_id`` unless another executor holds it (None then). The one step that both
    the in-process executor's threads and a worker's job call: the run's state in the database
    says what is left to do, so calling it again, anywhere, resumes rather than repeats.

    An unexpected exception is recorded as an ``executor.failed`` event and raised again: the run
    is resumed later (its heartbeat goes stale), unless that was its EXECUTOR_FAILURES_LIMIT-th
    failure in a row, which ends it DONE_FAILED_ENVIRONMENT."""
    try:
        final = RunExecutor(env, run_id).execute()
    except AutopackError as exc:
        # Lost a race for the run, or it is held by a live executor elsewhere.
        logger.info("run %s not executed here: %s", run_id, exc.message)
        return None
    except Exception as exc:
        _record_executor_failure(env, run_id, exc)
        raise
    logger.info("run %s ended %s", run_id, final.value)
    return final


def _record_executor_failure(env: ExecutorEnvironment, run_id: str, exc: Exception) -> None:
    error = redact(f"{type(exc).__name__}: {str(exc).strip()}"[:500], env.secrets)
    try:
        with env.sessions() as session:
            run = get_run(session, run_id)
            if run.state is not RunState.RUNNING:
                return
            append_event(session, run, "executor.failed", {"error": error, "worker": env.worker_id})
            session.flush()
            failures = execution.executor_failures_in_a_row(session, run)
            if failures >= EXECUTOR_FAILURES_LIMIT:
                reason = f"the executor failed {failures} times in a row; last: {error}"
                phase = execution.active_phase(session, run)
                if phase is not None:
                    transition_phase(session, phase, PhaseState.FAILED, reason=reason)
                transition_run(session, run, RunState.DONE_FAILED_ENVIRONMENT, reason=reason)
            session.commit()
    except Exception:  # the database itself may be what failed: the run is resumed later
        logger.warning("run %s: could not record the executor's failure", run_id, exc_info=True)


class PromotionRefusedError(ConflictError):
    code = "promotion_refused"


@dataclass(frozen=True)
class Promotion:
    run_id: str
    branch: str
    commit: str


def promote_run(
    sessions: sessionmaker[Session], settings: Settings, run_id: str, target: str | None = None
) -> Promotion:
    """Bring a DONE_SUCCESS run whose tiers are all clean into ``target`` (the project's default
    branch unless given) of its repository; returns the branch and its new commit. The one
    operation that writes the user's repository, and only on request.

    Refused (:class:`PromotionRefusedError`, 409) when ``runs.service.promotion_refusal`` says
    so, or when git refuses (a dirty checked-out target, a merge conflict, a rejected push);
    an invalid branch name is an :class:`InvalidInputError`."""
    with sessions() as session:
        run = get_run(session, run_id)
        project = get_project_by_pk(session, run.project_pk)
        refusal = promotion_refusal(
            run_id,
            run.state,
            [(tier.tier_id, tier.cleanliness) for tier in run.tiers],
            project.name,
            project.repo,
        )
        if refusal is not None:
            raise PromotionRefusedError(refusal.message, details=refusal.details)
        assert project.repo is not None  # promotion_refusal refuses a project without one
        branch = target or project.default_branch
        try:
            workspace = Workspace.open(settings.runs_dir / run_id / "workspace")
            commit = promote(workspace, project.repo, branch)
        except InvalidBranchError as exc:
            raise InvalidInputError(exc.message, details={"branch": branch}) from None
        except WorkspaceError as exc:
            raise PromotionRefusedError(
                f"run {run_id} cannot be promoted into {branch}: {exc.message}",
                details={"run_id": run_id, "branch": branch},
            ) from None
        append_event(session, run, "run.promoted", {"branch": branch, "commit": commit})
        session.commit()
        return Promotion(run_id=run_id, branch=branch, commit=commit)
