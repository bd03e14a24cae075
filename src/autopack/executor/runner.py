"""Executing a run: its phases in order, each through builder attempts, governance, the test
gate and the auditor, committed on the run's integration branch (ARCHITECTURE §5).

Crash safety: every step is recorded before the next begins. A restarted executor (``resume``)
reconciles a phase left in flight: if its commit made it to the branch (found by its trailer),
the phase is completed with that commit; otherwise the worktree is reset to the last good commit
and the attempt starts again. Nothing is lost but the attempt in flight, and no commit is made
twice.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from autopack.approvals import service as approvals
from autopack.approvals.models import ApprovalStatus
from autopack.db.base import utcnow
from autopack.errors import AutopackError, ConflictError
from autopack.events.service import append_event
from autopack.executor import gate as gate_module
from autopack.executor.artifacts import RunArtifacts, redact
from autopack.executor.auditor import (
    AuditorReplyError,
    build_auditor_messages,
    parse_auditor_verdict,
)
from autopack.executor.context import PhaseBrief, build_context, describe_failure, expand_scope
from autopack.executor.edits import EditError, apply_edits, parse_reply
from autopack.executor.governance import (
    GovernanceLimits,
    Rule,
    Verdict,
    check_changes,
    write_changes,
)
from autopack.executor.prompts import BUILDER_SYSTEM_PROMPT
from autopack.executor.recall import FAILURE_QUERY_CHARS, RunMemory
from autopack.executor.repomap import approximate_tokens
from autopack.executor.sandbox import build_sandbox
from autopack.executor.testrun import TestRun, run_tests
from autopack.executor.workspace import (
    PHASE_TRAILER,
    RUN_TRAILER,
    Workspace,
    WorkspaceError,
    git_environment,
)
from autopack.issues.models import IssueSeverity, IssueSource
from autopack.issues.schemas import IssueCreate
from autopack.issues.service import phase_issues, record_issue
from autopack.llm.budget import (
    BudgetExhaustedError,
    BudgetLimits,
    BudgetScope,
    BudgetUsage,
    fit_max_tokens,
)
from autopack.llm.pricing import completion_cost, prompt_tokens_upper_bound
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    CredentialCheck,
    Message,
    Provider,
    ProviderError,
)
from autopack.llm.routing import ModelChoice, Router
from autopack.memory.provider import MemoryProvider
from autopack.observability.logging import bound_log_context
from autopack.rules import learning
from autopack.rules.service import RuleTransitionRefusedError, rules_for_phase
from autopack.runs import execution
from autopack.runs.models import Attempt, Phase, Run, SafetyProfile, Tier
from autopack.runs.states import (
    PHASE_ACTIVE_STATES,
    PhaseState,
    RunState,
    transition_phase,
    transition_run,
)
from autopack.settings import Settings
from autopack.usage.models import LlmRole

logger = logging.getLogger(__name__)

AUDITOR_CONTEXT_TOKENS = 12_000


@dataclass(frozen=True)
class ExecutorEnvironment:
    """What executing needs from outside: settings, the database, a model provider, routing,
    and the environment test commands start from (scrubbed of secrets by the test runner)."""

    settings: Settings
    sessions: sessionmaker[Session]
    provider: Provider
    router: Router
    base_env: Mapping[str, str]
    secrets: list[str]
    secret_env_names: list[str]
    worker_id: str
    # The vector memory runs use (None: none). Shared by the executor's threads.
    memory: MemoryProvider | None = None
    # Whether active learned rules reach builder prompts. The demo turns this off: its replies
    # are replayed by prompt, so what earlier runs taught must not change its prompts.
    learned_rules: bool = True


class RunBusyError(ConflictError):
    """Another live executor holds the run."""

    code = "run_busy"


class RunStopped(Exception):  # noqa: N818 - control flow, not an error
    """The run reached an end state (or was paused/cancelled) while a phase was executing."""

    def __init__(self, state: RunState, reason: str | None) -> None:
        super().__init__(reason or state.value)
        self.state = state
        self.reason = reason


@dataclass
class _Failure:
    """Why an attempt failed: fed back to the next attempt and recorded as an issue."""

    outcome: str
    reason: str
    signature: str
    source: IssueSource
    severity: IssueSeverity = IssueSeverity.MAJOR
    feedback: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class RunExecutor:
    """Executes one run to an end state. Safe to call again on the same run after a crash."""

    def __init__(self, env: ExecutorEnvironment, run_id: str) -> None:
        self.env = env
        self.settings = env.settings
        self.run_id = run_id
        self.artifacts = RunArtifacts(self.settings.runs_dir, run_id, env.secrets)
        self.cancel = threading.Event()
        self._baselines: dict[str, TestRun] = {}
        # Bound to the run's project once the workspace is open.
        self.memory = RunMemory(None, "", run_id)

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> RunState:
        """Claim the run (QUEUED -> RUNNING) and execute it. A RUNNING run is taken over only
        when no executor has proved it is alive within ``stale_heartbeat_seconds``: that is how
        a crashed run resumes. Any other state is returned as it is."""
        # Every record logged while this run executes carries its run_id (unbound after).
        with bound_log_context(run_id=self.run_id):
            return self._execute()

    def _execute(self) -> RunState:
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            if run.state is RunState.QUEUED:
                transition_run(session, run, RunState.RUNNING)
                session.commit()
                logger.info("run started", extra={"worker": self.env.worker_id})
            elif run.state is RunState.RUNNING:
                holder = execution.live_holder(
                    session, run, timedelta(seconds=self.settings.stale_heartbeat_seconds)
                )
                if holder is not None and holder != self.env.worker_id:
                    raise RunBusyError(
                        f"run {run.run_id} is being executed by {holder} (its heartbeat is "
                        f"fresh); wait, or cancel it",
                        details={"run_id": run.run_id, "worker": holder},
                    )
                append_event(session, run, "run.resumed", {"worker": self.env.worker_id})
                session.commit()
                logger.info("run resumed", extra={"worker": self.env.worker_id})
            else:
                return run.state
        try:
            self._check_credentials()
            workspace = self._open_workspace()
            self._execute_phases(workspace)
        except RunStopped as stop:
            return self._end(stop.state, stop.reason)
        except AutopackError as exc:
            # Something around the phase could not be done (the test command could not start,
            # the context cannot fit, git failed): the run cannot go on by itself.
            self._fail_active_phase(exc.message)
            return self._end(RunState.DONE_FAILED_ENVIRONMENT, exc.message)
        return self._end(RunState.DONE_SUCCESS, None)

    def _check_credentials(self) -> None:
        """A run whose models lack a key stops before its first phase, naming the key, rather
        than failing in the middle of a phase (maybe hours in) when escalation reaches a model
        of the other provider."""
        if not isinstance(self.env.provider, CredentialCheck):
            return
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            phases = [
                (phase.task_category, str(phase.complexity))
                for phase in execution.phases_in_order(session, run)
            ]
            models = self.env.router.reachable_models(phases, _overrides(run))
        problems = self.env.provider.missing_credentials(models)
        if problems:
            raise RunStopped(
                RunState.DONE_FAILED_ENVIRONMENT,
                "cannot start: " + "; ".join(problems),
            )

    def _fail_active_phase(self, reason: str) -> None:
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            phase = execution.active_phase(session, run)
            if phase is not None:
                transition_phase(session, phase, PhaseState.FAILED, reason=reason)
                session.commit()

    def _open_workspace(self) -> Workspace:
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            project = execution.project_of(session, run)
            if not project.repo:
                raise RunStopped(
                    RunState.DONE_FAILED_ENVIRONMENT,
                    f"project {project.name!r} has no repository; register it with a repo path "
                    "or URL",
                )
            try:
                # A run that started before keeps its base, even in a workspace made afresh
                # (another worker's runs directory).
                workspace = Workspace.create(
                    project.repo,
                    run.run_id,
                    self.settings.runs_dir,
                    ref=run.base_commit,
                    base_env=self.env.base_env,
                )
            except WorkspaceError as exc:
                raise RunStopped(RunState.DONE_FAILED_ENVIRONMENT, exc.message) from None
            if run.head_commit is not None:
                _refuse_foreign_workspace(workspace, run.head_commit)
            if run.base_commit is None:
                run.base_commit = workspace.base_commit
                run.head_commit = workspace.base_commit
                run.integration_branch = workspace.branch
                dirty = list(workspace.dirty_source)
                append_event(
                    session,
                    run,
                    "workspace.ready",
                    {
                        "branch": workspace.branch,
                        "base_commit": workspace.base_commit,
                        "uncommitted_changes_ignored": dirty[:50],
                    },
                )
                session.commit()
            self.memory = RunMemory(self.env.memory, project.name, run.run_id)
        # The index follows the workspace: at the start here, and after each commit.
        self.memory.index(workspace.path)
        self.report_memory_problem()
        return workspace

    def _execute_phases(self, workspace: Workspace) -> None:
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            phase_ids = [phase.id for phase in execution.phases_in_order(session, run)]
        for phase_pk in phase_ids:
            with self.env.sessions() as session:
                phase = session.get_one(Phase, phase_pk)
                state = phase.state
            if state in (PhaseState.COMPLETE, PhaseState.SKIPPED):
                continue
            if state is PhaseState.FAILED:
                raise RunStopped(
                    RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
                    f"phase {phase.phase_id} has failed; retry it to continue",
                )
            with bound_log_context(phase_id=phase.phase_id):
                logger.info("phase started")
                PhaseExecutor(self, workspace, phase_pk).execute()
                logger.info("phase complete")

    def _end(self, state: RunState, reason: str | None) -> RunState:
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            if run.state is RunState.RUNNING:
                transition_run(session, run, state, reason=reason)
                session.commit()
            final = run.state
            self.artifacts.write_summary(run_summary_markdown(session, run))
        logger.info("run ended: %s", final.value, extra={"state": final.value, "reason": reason})
        return final

    # --- shared helpers -----------------------------------------------------------------------

    def report_memory_problem(self) -> None:
        """The first time the memory could not be used in this run, say so in its events (the
        run goes on without it)."""
        problem = self.memory.take_problem()
        if problem is None:
            return
        with self.env.sessions() as session:
            run = execution.load_run(session, self.run_id)
            append_event(
                session, run, "memory.unavailable", {"reason": redact(problem, self.env.secrets)}
            )
            session.commit()

    def check_still_running(self, session: Session, run: Run) -> None:
        session.refresh(run)
        if run.state is RunState.CANCELLED:
            self.cancel.set()
            raise RunStopped(RunState.CANCELLED, run.failure_reason)
        if run.state is not RunState.RUNNING:
            raise RunStopped(run.state, run.failure_reason)
        limit = run.max_duration_minutes
        if limit is not None and run.started_at is not None:
            elapsed = utcnow() - run.started_at
            if elapsed > timedelta(minutes=limit):
                raise RunStopped(
                    RunState.DONE_FAILED_BUDGET_EXHAUSTED,
                    f"the run has taken {elapsed.total_seconds() / 60:.1f} minutes, over its "
                    f"max_duration_minutes of {limit}",
                )

    def baseline(self, workspace: Workspace, command: str, base_commit: str) -> TestRun:
        """The test command's result at the base commit, once per command per executor."""
        cached = self._baselines.get(command)
        if cached is not None:
            return cached
        checkout = self.artifacts.baseline_dir / f"checkout-{len(self._baselines)}"
        _discard_checkout(workspace, self.env.base_env, checkout)
        _git(
            workspace,
            self.env.base_env,
            "worktree",
            "add",
            "--force",
            "--detach",
            str(checkout),
            base_commit,
        )
        try:
            result = self.run_test_command(command, checkout, label="baseline")
        finally:
            _git(workspace, self.env.base_env, "worktree", "remove", "--force", str(checkout))
        self.artifacts.write(
            self.artifacts.baseline_dir / f"baseline-{len(self._baselines)}.log",
            f"$ {command}\n{result.output}",
        )
        self._baselines[command] = result
        return result

    def run_test_command(self, command: str, cwd: Path, *, label: str) -> TestRun:
        return run_tests(
            command,
            cwd,
            env=self.env.base_env,
            secret_names=self.env.secret_env_names,
            timeout_s=self.settings.test_timeout_seconds,
            output_limit_bytes=self.settings.test_output_limit_bytes,
            junit_dir=self.artifacts.root / "junit",
            cancel=self.cancel,
            # Built per command (a cached probe): an unusable sandbox ends the run at its first
            # test command, the baseline, before any model call.
            sandbox=build_sandbox(self.settings.test_sandbox),
        )


class PhaseExecutor:
    """One phase, attempt after attempt, until it is committed or it fails."""

    def __init__(self, runner: RunExecutor, workspace: Workspace, phase_pk: int) -> None:
        self.runner = runner
        self.env = runner.env
        self.settings = runner.settings
        self.workspace = workspace
        self.phase_pk = phase_pk
        # Learned rules shown to this phase's builder: each is told at the end whether the phase
        # still met its failure.
        self._rules_shown: set[int] = set()

    def execute(self) -> None:
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            run = session.get_one(Run, phase.run_pk)
            self.runner.check_still_running(session, run)
            approved = (
                self._unblock(session, run, phase) if phase.state is PhaseState.BLOCKED else None
            )
            if approved is None and self._recover(session, run, phase):
                return
            if phase.state is PhaseState.QUEUED:
                transition_phase(
                    session,
                    phase,
                    PhaseState.EXECUTING,
                    values={"claimed_by": self.env.worker_id, "heartbeat_at": utcnow()},
                )
                session.commit()
            max_attempts = phase.max_attempts or self.settings.max_attempts
            history = execution.attempt_history(session, phase)
        with _Heartbeat(self.env, self.phase_pk, self.runner):
            try:
                self._baseline_first()
                if approved is not None:
                    if self._apply_approved(approved) is None:
                        return
                    with self.env.sessions() as session:
                        phase = session.get_one(Phase, self.phase_pk)
                        history = execution.attempt_history(session, phase)
                self._attempts(history, max_attempts)
            except RunStopped as stop:
                if stop.state is RunState.CANCELLED:
                    self._close_cancelled(stop.reason)
                raise

    def _baseline_first(self) -> None:
        """Run the phase's baseline before any model call: a test command that does not exist
        ends the run now, not after a builder call has been paid for."""
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            run = session.get_one(Run, phase.run_pk)
            project = execution.project_of(session, run)
            command = PhaseBrief.from_record(phase).test_cmd or project.default_test_cmd
            base = run.base_commit or self.workspace.base_commit
            phase_id = phase.phase_id
        if not command:
            return
        if not self.runner.baseline(self.workspace, command, base).command_not_found:
            return
        reason = f"the test command of phase {phase_id} was not found: {command!r}"
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            transition_phase(session, phase, PhaseState.FAILED, reason=reason)
            session.commit()
        raise RunStopped(RunState.DONE_FAILED_ENVIRONMENT, reason)

    def _close_cancelled(self, reason: str | None) -> None:
        """The run was cancelled mid-phase: finish the attempt in flight and fail the phase, so
        that nothing in a CANCELLED run looks as if it were still running."""
        why = f"the run was cancelled{': ' + reason if reason else ''}"
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            unfinished = session.scalars(
                select(Attempt).where(Attempt.phase_pk == phase.id, Attempt.finished_at.is_(None))
            ).all()
            for attempt in unfinished:
                execution.finish_attempt(
                    session,
                    attempt,
                    execution.AttemptOutcome(outcome="cancelled", failure_reason=why),
                )
            if phase.state in PHASE_ACTIVE_STATES:
                transition_phase(
                    session, phase, PhaseState.FAILED, reason=why, values={"claimed_by": None}
                )
            session.commit()

    # --- approvals ----------------------------------------------------------------------------

    def _unblock(self, session: Session, run: Run, phase: Phase) -> int | None:
        """A BLOCKED phase of a run an executor claimed again: its approval was approved (the
        run was queued by the decision). Moves it back to EXECUTING and returns the approval's
        id; anything else stops the run as the approval says."""
        approval = approvals.latest_for_phase(session, run, phase.phase_id)
        status = approval.status if approval is not None else None
        if approval is not None and status is ApprovalStatus.APPROVED:
            transition_phase(
                session,
                phase,
                PhaseState.EXECUTING,
                reason=f"approval {approval.id} approved by {approval.decided_by}",
                values={"claimed_by": self.env.worker_id, "heartbeat_at": utcnow()},
            )
            session.commit()
            return approval.id
        if approval is not None and status is ApprovalStatus.PENDING:
            # Claimed while still waiting (`runs resume` of a paused run cannot get here, but a
            # run moved by hand could): wait again rather than guess.
            transition_run(
                session, run, RunState.PAUSED, reason=f"waiting for approval {approval.id}"
            )
            session.commit()
            raise RunStopped(RunState.PAUSED, f"waiting for approval {approval.id}")
        reason = (
            f"approval {approval.id} was {status}: {approval.reason}"
            if approval is not None
            else "the phase is blocked and has no approval request"
        )
        transition_phase(session, phase, PhaseState.FAILED, reason=reason)
        session.commit()
        raise RunStopped(
            RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW, f"phase {phase.phase_id} failed: {reason}"
        )

    def _apply_approved(self, approval_id: int) -> _Failure | None:
        """The approved change set, as one more attempt (no model call): re-applied on the last
        good commit, checked again with only what was approved waived (the phase's scope and the
        project's protected paths; never the workspace's boundaries or the size limits), then
        tested, audited and committed as any attempt. None when committed, else why not (fed
        back to the next builder attempt as usual)."""
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            run = session.get_one(Run, phase.run_pk)
            approval = approvals.get_approval(session, approval_id)
            self.workspace.reset_hard(run.head_commit or self.workspace.base_commit)
            changes = approvals.approved_changes(approval)
            model = (approval.subject or {}).get("model")
            attempt = execution.start_attempt(
                session, phase, model if isinstance(model, str) else None
            )
            attempt.edits = [
                {"path": path, "deleted": content is None} for path, content in changes.items()
            ]
            append_event(
                session,
                run,
                "attempt.started",
                {
                    "attempt": attempt.number,
                    "model": attempt.model,
                    "routing": "approval",
                    "approval_id": approval_id,
                },
                phase_id=phase.phase_id,
            )
            session.commit()
            verdict = check_changes(
                changes,
                self.workspace.path,
                limits=GovernanceLimits(
                    max_files=self.settings.max_files_per_attempt,
                    max_file_bytes=self.settings.max_file_bytes,
                ),
            )
            if verdict.ok:
                failure = self._write_and_gate(
                    session, run, phase, attempt, PhaseBrief.from_record(phase), changes, verdict
                )
            else:
                failure = self._governance_failure(session, run, phase, attempt, verdict)
            if failure is not None:
                self._record_failure(session, run, phase, attempt, failure)
            return failure

    # --- crash recovery -----------------------------------------------------------------------

    def _recover(self, session: Session, run: Run, phase: Phase) -> bool:
        """Reconcile a phase a crashed executor left in flight. True when it is now COMPLETE."""
        if phase.state in (PhaseState.QUEUED, PhaseState.COMPLETE):
            return phase.state is PhaseState.COMPLETE
        committed = self.workspace.find_commit_with_trailer(PHASE_TRAILER, phase.phase_id)
        unfinished = session.scalars(
            select(Attempt).where(Attempt.phase_pk == phase.id, Attempt.finished_at.is_(None))
        ).all()
        for attempt in unfinished:
            execution.finish_attempt(
                session,
                attempt,
                execution.AttemptOutcome(
                    outcome="success" if committed else execution.INTERRUPTED,
                    failure_reason=None if committed else "the executor stopped mid-attempt",
                ),
            )
        reason = "recovered after the executor stopped"
        path = _COMPLETE_PATH if committed else _RESTART_PATH
        for state in path.get(phase.state, ()):
            values: dict[str, Any] = {"claimed_by": self.env.worker_id, "heartbeat_at": utcnow()}
            if state is PhaseState.COMPLETE and committed:
                values["commit_sha"] = committed
            transition_phase(session, phase, state, reason=reason, values=values)
        if committed:
            run.head_commit = committed
            append_event(
                session, run, "phase.recovered", {"commit": committed}, phase_id=phase.phase_id
            )
        else:
            phase.claimed_by = self.env.worker_id
            phase.heartbeat_at = utcnow()
            self.workspace.reset_hard(run.head_commit or self.workspace.base_commit)
        session.commit()
        return committed is not None

    # --- attempts -----------------------------------------------------------------------------

    def _attempts(self, history: execution.AttemptHistory, max_attempts: int) -> None:
        feedback = history.feedback
        failures = history.consecutive_failures
        previous = history.last_failure
        signature = previous[0] if previous is not None else None
        escalate = 0
        number = history.counted + 1
        sources: list[IssueSource] = []
        after = self.runner.env.router.config.escalation.after_failures
        while number <= max_attempts:
            self._consecutive_failures = failures
            failure = self._attempt(feedback, failures + escalate, signature)
            if failure is None:
                return
            failures += 1
            sources.append(failure.source)
            feedback = failure.feedback or failure.reason
            signature = failure.signature
            key = (failure.signature, self._last_model)
            choice = self._last_choice
            if previous == key and choice is not None:
                # The same failure from the same model with the failure fed back: a loop.
                # Move one step along the chain if there is somewhere to go, else stop now.
                if choice.step_in_chain + 1 < len(choice.chain):
                    escalate = max(escalate, (choice.step_in_chain + 1) * after - failures)
                else:
                    self._fail_phase(
                        f"the same failure repeated (loop detected): {failure.reason}",
                        policy=set(sources) == {IssueSource.GOVERNANCE},
                    )
            previous = key
            number += 1
        self._fail_phase(
            f"no attempt passed in {max_attempts}: {feedback or 'unknown failure'}",
            policy=bool(sources) and set(sources) == {IssueSource.GOVERNANCE},
        )

    _consecutive_failures = 0
    _staged_changes = False
    _last_model: str | None = None
    _last_choice: ModelChoice | None = None

    def _attempt(
        self, feedback: str | None, failures: int, signature: str | None
    ) -> _Failure | None:
        """One builder attempt. None when the phase is committed, else why it failed.
        ``feedback`` and ``signature`` describe the previous attempt's failure, if any."""
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            run = session.get_one(Run, phase.run_pk)
            self.runner.check_still_running(session, run)
            self.workspace.reset_hard(run.head_commit or self.workspace.base_commit)
            brief = PhaseBrief.from_record(phase)
            rules = (
                rules_for_phase(session, run.project_pk, phase.task_category, brief.paths)
                if self.env.learned_rules
                else []
            )
            self._rules_shown.update(rule.id for rule in rules)
            files = self.workspace.tracked_files()
            memory = self.runner.memory
            shown_whole = {
                path
                for _, matched in expand_scope([*brief.paths, *brief.read_only_context], files)
                for path in matched
            }
            context = build_context(
                brief,
                files=files,
                read=self.workspace.read_text,
                budget=self.settings.context_token_budget,
                estimate=approximate_tokens,
                rules=[rule.text for rule in rules],
                previous_failure=feedback,
                known_fixes=memory.known_fixes(signature) if feedback and signature else (),
                snippets=memory.snippets(
                    _retrieval_query(brief, feedback), self.workspace.read_text, exclude=shown_whole
                ),
            )
            self.runner.report_memory_problem()
            messages = tuple(
                Message(role=role, content=content)
                for role, content in context.render_messages(BUILDER_SYSTEM_PROMPT)
            )
            choice = self.env.router.select(
                "builder", str(phase.complexity), phase.task_category, failures, _overrides(run)
            )
            self._last_model = choice.model
            self._last_choice = choice
            attempt = execution.start_attempt(session, phase, choice.model)
            append_event(
                session,
                run,
                "attempt.started",
                {"attempt": attempt.number, "model": choice.model, "routing": choice.source},
                phase_id=phase.phase_id,
            )
            session.commit()
            attempt_number = attempt.number
            self.runner.artifacts.write_attempt(
                phase.phase_id, attempt_number, "prompt.md", _render_prompt(messages)
            )
            completion = self._call(session, run, phase, attempt, LlmRole.BUILDER, choice, messages)
            self.runner.artifacts.write_attempt(
                phase.phase_id, attempt_number, "reply.md", completion.text
            )
            failure = self._build_and_check(session, run, phase, attempt, completion, brief)
            if failure is not None:
                self._record_failure(session, run, phase, attempt, failure)
                return failure
            return None

    def _call(
        self,
        session: Session,
        run: Run,
        phase: Phase,
        attempt: Attempt,
        role: LlmRole,
        choice: ModelChoice,
        messages: tuple[Message, ...],
    ) -> Completion:
        """One model call, allowed only if its worst case fits every budget; recorded in the
        ledger and the counters in the same transaction."""
        tier = session.get_one(Tier, phase.tier_pk)
        session.refresh(run)
        scopes = [
            BudgetScope(
                f"phase {phase.phase_id}",
                BudgetLimits(phase.token_cap, phase.cost_cap_usd),
                BudgetUsage(phase.tokens_used, phase.cost_usd),
            ),
            BudgetScope(
                f"tier {tier.tier_id}",
                BudgetLimits(tier.token_cap, tier.cost_cap_usd),
                BudgetUsage(tier.tokens_used, tier.cost_usd),
            ),
            BudgetScope(
                f"run {run.run_id}",
                BudgetLimits(run.token_cap, run.cost_cap_usd),
                BudgetUsage(run.tokens_used, run.cost_usd),
            ),
        ]
        try:
            allowance = fit_max_tokens(
                scopes, prompt_tokens_upper_bound(messages), choice.max_tokens, choice.spec
            )
        except BudgetExhaustedError as exc:
            execution.finish_attempt(
                session,
                attempt,
                execution.AttemptOutcome(outcome="budget_exhausted", failure_reason=exc.message),
            )
            record_issue(
                session,
                run,
                IssueCreate(
                    issue_key=f"budget:{exc.scope.split(' ')[0]}:{exc.what}",
                    severity=IssueSeverity.MAJOR,
                    source=IssueSource.BUDGET,
                    title="budget exhausted",
                    message=exc.message,
                    phase_id=phase.phase_id,
                    attempt_number=attempt.number,
                ),
            )
            transition_phase(session, phase, PhaseState.FAILED, reason=exc.message)
            session.commit()
            raise RunStopped(RunState.DONE_FAILED_BUDGET_EXHAUSTED, exc.message) from None
        request = CompletionRequest(
            model=choice.model, messages=messages, max_tokens=allowance.max_tokens
        )
        context = CallContext(
            run_id=run.run_id, phase_id=phase.phase_id, attempt=attempt.number, role=role.value
        )
        # No transaction stays open while the model thinks: on SQLite it would hold the write
        # lock, and the heartbeat and a cancel from the API could not write for the whole call.
        session.commit()
        started = time.monotonic()
        try:
            completion = self.env.provider.complete(request, context=context)
        except ProviderError as exc:
            execution.record_usage(
                session,
                run,
                phase,
                attempt,
                provider=choice.provider,
                model=choice.model,
                role=role,
                input_tokens=0,
                output_tokens=0,
                cost_usd=Decimal(0),
                latency_ms=int((time.monotonic() - started) * 1000),
                outcome="error",
                error=exc.message,
            )
            execution.finish_attempt(
                session,
                attempt,
                execution.AttemptOutcome(outcome="provider_error", failure_reason=exc.message),
            )
            transition_phase(session, phase, PhaseState.FAILED, reason=exc.message)
            session.commit()
            raise RunStopped(RunState.DONE_FAILED_ENVIRONMENT, exc.message) from None
        cost = completion_cost(choice.spec, completion)
        execution.record_usage(
            session,
            run,
            phase,
            attempt,
            provider=completion.provider,
            model=completion.model,
            role=role,
            input_tokens=completion.prompt_tokens,
            output_tokens=completion.output_tokens,
            cache_read_tokens=completion.cache_read_tokens,
            cache_write_tokens=completion.cache_write_tokens,
            cost_usd=cost,
            latency_ms=int((time.monotonic() - started) * 1000),
            outcome="truncated" if completion.truncated else "ok",
        )
        session.commit()
        return completion

    def _build_and_check(
        self,
        session: Session,
        run: Run,
        phase: Phase,
        attempt: Attempt,
        completion: Completion,
        brief: PhaseBrief,
    ) -> _Failure | None:
        if completion.truncated:
            return _Failure(
                "truncated",
                "the reply was cut off at max_tokens; make the edits smaller",
                "truncated",
                IssueSource.BUILDER,
            )
        project = execution.project_of(session, run)
        try:
            parsed = parse_reply(completion.text)
        except EditError as exc:
            return self._edit_failure(exc)
        # Where the edits go is judged before they are applied: a path outside the workspace
        # (or under .git/) is a governance violation, not a file to look for.
        paths_verdict = check_changes(
            {path: "" for path in parsed.paths},
            self.workspace.path,
            scope_paths=brief.paths,
            protected_paths=list(project.protected_paths or []),
            limits=GovernanceLimits(
                max_files=self.settings.max_files_per_attempt,
                max_file_bytes=None,
                max_total_bytes=None,
            ),
        )
        if not paths_verdict.ok and not _needs_approval(run, paths_verdict):
            return self._governance_failure(session, run, phase, attempt, paths_verdict)
        try:
            changes = apply_edits(parsed.edits, self.workspace.read_text)
        except EditError as exc:
            return self._edit_failure(exc)
        verdict = check_changes(
            changes,
            self.workspace.path,
            scope_paths=brief.paths,
            protected_paths=list(project.protected_paths or []),
            limits=GovernanceLimits(
                max_files=self.settings.max_files_per_attempt,
                max_file_bytes=self.settings.max_file_bytes,
            ),
        )
        attempt.edits = [
            {"path": path, "deleted": content is None} for path, content in changes.items()
        ]
        if not verdict.ok:
            if _needs_approval(run, verdict):
                self._block_for_approval(session, run, phase, attempt, verdict, changes)
            return self._governance_failure(session, run, phase, attempt, verdict)
        return self._write_and_gate(session, run, phase, attempt, brief, changes, verdict)

    def _write_and_gate(
        self,
        session: Session,
        run: Run,
        phase: Phase,
        attempt: Attempt,
        brief: PhaseBrief,
        changes: Mapping[str, str | None],
        verdict: Verdict,
    ) -> _Failure | None:
        """Write a change set with a clean verdict, test it, audit it, commit it: the common
        end of a builder attempt and of an approved change."""
        project = execution.project_of(session, run)
        attempt.governance_verdict = verdict.to_dict()
        write_changes(self.workspace.path, changes, verdict)
        self.workspace.stage_all()
        diff = self.workspace.staged_diff(run.head_commit or self.workspace.base_commit)
        self._staged_changes = bool(diff.strip())
        written = self.runner.artifacts.record_attempt(
            phase.phase_id, attempt.number, "diff.patch", diff
        )
        attempt.diff = execution.cap_diff(written)

        transition_phase(session, phase, PhaseState.CI_RUNNING)
        session.commit()
        command = brief.test_cmd or project.default_test_cmd
        if command:
            base = run.base_commit or self.workspace.base_commit
            baseline = self.runner.baseline(self.workspace, command, base)
            result = self.runner.run_test_command(command, self.workspace.path, label="attempt")
            log = self.runner.artifacts.record_attempt(
                phase.phase_id, attempt.number, "test.log", f"$ {command}\n{result.output}"
            )
            attempt.test_output = execution.cap_test_output(log)
            execution.count_ci_run(session, run)
            if self.runner.cancel.is_set():
                self.runner.check_still_running(session, run)
            if result.command_not_found or baseline.command_not_found:
                transition_phase(session, phase, PhaseState.FAILED, reason="test command not found")
                session.commit()
                raise RunStopped(
                    RunState.DONE_FAILED_ENVIRONMENT,
                    f"the test command of phase {phase.phase_id} was not found: {command!r}",
                )
            verdict_gate = gate_module.evaluate(baseline, result, list(brief.acceptance_criteria))
            attempt.test_result = _test_summary(result, verdict_gate)
        else:
            verdict_gate = None
            attempt.test_result = {"skipped": "no test command for this phase or project"}
        transition_phase(session, phase, PhaseState.GATE)
        session.commit()
        if verdict_gate is not None and not verdict_gate.passed:
            excerpt = stable_output(result.output[-4000:], self.workspace.path)
            return _Failure(
                "tests_failed",
                verdict_gate.reason,
                verdict_gate.failure_signature(),
                IssueSource.TESTS,
                feedback=describe_failure(
                    verdict_gate.reason,
                    failing_tests=[(name, excerpt) for name in verdict_gate.new_failures[:5]]
                    or [("test output", excerpt)],
                ),
                details={"new_failures": verdict_gate.new_failures},
            )
        audit_failure = self._audit(session, run, phase, attempt, brief, diff, verdict_gate)
        if audit_failure is not None:
            return audit_failure
        self._commit(session, run, phase, attempt)
        self._learn_from_success(session, run, phase, attempt)
        return None

    @staticmethod
    def _edit_failure(exc: EditError) -> _Failure:
        return _Failure(
            "edit_error",
            exc.message,
            _signature(f"edit:{type(exc).__name__}"),
            IssueSource.BUILDER,
            feedback=describe_failure(exc.message, apply_errors=[exc.message]),
        )

    def _governance_failure(
        self, session: Session, run: Run, phase: Phase, attempt: Attempt, verdict: Verdict
    ) -> _Failure:
        """Nothing was written; the model is told why and tries again."""
        attempt.governance_verdict = verdict.to_dict()
        lines = [violation.message for violation in verdict.violations]
        return _Failure(
            "governance",
            f"governance refused the edits: {verdict.summary()}",
            _signature("governance:" + "|".join(sorted(lines))),
            IssueSource.GOVERNANCE,
            feedback=describe_failure(
                "governance refused the edits; nothing was written",
                governance_violations=lines,
            ),
            details={"violations": verdict.to_dict()},
        )

    def _audit(
        self,
        session: Session,
        run: Run,
        phase: Phase,
        attempt: Attempt,
        brief: PhaseBrief,
        diff: str,
        verdict_gate: gate_module.GateVerdict | None,
    ) -> _Failure | None:
        # Consecutive failures of this phase (an attempt a crash interrupted does not count).
        needed, why = self.env.router.needs_audit(
            phase.task_category, str(phase.complexity), self._consecutive_failures
        )
        if not needed:
            return None
        choice = self.env.router.select(
            "auditor", str(phase.complexity), phase.task_category, overrides=_overrides(run)
        )
        summary = verdict_gate.reason if verdict_gate is not None else "no test command"
        messages = tuple(
            Message(role=role, content=content)
            for role, content in build_auditor_messages(
                brief, diff, summary, AUDITOR_CONTEXT_TOKENS
            )
        )
        append_event(
            session,
            run,
            "audit.requested",
            {"model": choice.model, "why": why},
            phase_id=phase.phase_id,
        )
        completion = self._call(session, run, phase, attempt, LlmRole.AUDITOR, choice, messages)
        self.runner.artifacts.write_attempt(
            phase.phase_id, attempt.number, "auditor.md", completion.text
        )
        try:
            verdict = parse_auditor_verdict(completion.text)
        except AuditorReplyError as exc:
            return _Failure("auditor_invalid", exc.message, "auditor-invalid", IssueSource.AUDITOR)
        attempt.auditor_verdict = verdict.to_dict()
        append_event(
            session,
            run,
            "audit.verdict",
            {"verdict": str(verdict.verdict)},
            phase_id=phase.phase_id,
        )
        session.commit()
        if verdict.approved:
            return None
        if str(verdict.verdict) == "escalate":
            self.workspace.reset_hard(run.head_commit or self.workspace.base_commit)
            transition_phase(session, phase, PhaseState.FAILED, reason="the auditor escalated")
            execution.finish_attempt(
                session,
                attempt,
                execution.AttemptOutcome(
                    outcome="audit_escalated",
                    failure_reason="; ".join(verdict.issue_lines()) or "escalated",
                    auditor_verdict=verdict.to_dict(),
                ),
            )
            session.commit()
            raise RunStopped(
                RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
                f"the auditor escalated phase {phase.phase_id} to a human: "
                + ("; ".join(verdict.issue_lines()) or "no reason given"),
            )
        lines = verdict.issue_lines()
        return _Failure(
            "audit_revise",
            "the auditor asked for revisions",
            _signature("audit:" + "|".join(sorted(lines))),
            IssueSource.AUDITOR,
            feedback=describe_failure("the auditor asked for revisions", auditor_issues=lines),
        )

    def _commit(self, session: Session, run: Run, phase: Phase, attempt: Attempt) -> None:
        message = (
            f"{phase.name}\n\nAutopack run {run.run_id}, phase {phase.phase_id}, "
            f"attempt {attempt.number}."
        )
        trailers = {RUN_TRAILER: run.run_id, PHASE_TRAILER: phase.phase_id}
        # What the attempt staged before its tests ran is what gets committed (files the tests
        # created are not); an attempt that changed nothing commits nothing.
        if self._staged_changes:
            sha = self.workspace.commit_staged(message, trailers=trailers)
        else:
            sha = self.workspace.head()
        execution.finish_attempt(
            session,
            attempt,
            execution.AttemptOutcome(
                outcome="success",
                edits=attempt.edits,
                governance_verdict=attempt.governance_verdict,
                test_result=attempt.test_result,
                auditor_verdict=attempt.auditor_verdict,
            ),
        )
        transition_phase(session, phase, PhaseState.COMPLETE, values={"commit_sha": sha})
        run.head_commit = sha
        session.commit()

    def _learn_from_success(
        self, session: Session, run: Run, phase: Phase, attempt: Attempt
    ) -> None:
        """After a commit: the index follows it, the phase's summary is stored, each failure an
        earlier attempt met is stored with the change that fixed it and taught to the learned
        rules, and the rules the builder was shown are told how the phase went."""
        memory = self.runner.memory
        memory.index(self.workspace.path)
        paths = [str(edit.get("path")) for edit in attempt.edits or [] if edit.get("path")]
        memory.store_summary(phase.phase_id, _phase_summary(phase, attempt, paths))
        fixed = [
            learning.FixedFailure(issue.issue_key, IssueSource(issue.source), message)
            for issue, message in phase_issues(session, run, phase.phase_id)
        ]
        diff = attempt.diff or ""
        for failure in fixed:
            if failure.source in learning.LEARNABLE_SOURCES:
                signature = failure.issue_key.split(":", 1)[-1]
                memory.store_fix(phase.phase_id, signature, failure.message, diff)
        fix = learning.Fix(run.run_id, phase.name, phase.task_category, paths, diff)
        try:
            learned = learning.learn_from_fix(
                session,
                run.project_pk,
                fixed,
                fix,
                activate_after=self.settings.rules_activate_after_confirmations,
            )
            for rule in learned:
                memory.store_rule(rule.id, rule.text)
            self._count_rule_outcomes(session, {failure.issue_key for failure in fixed})
        except RuleTransitionRefusedError as exc:
            # Someone changed the rule's stage at the same moment: theirs stands.
            logger.info("learned rule not moved: %s", exc.message)
        session.commit()
        self.runner.report_memory_problem()

    def _count_rule_outcomes(self, session: Session, failure_keys: set[str]) -> None:
        learning.record_outcomes(
            session,
            self._rules_shown,
            failure_keys,
            retire_after=self.settings.rules_retire_after_misses,
        )
        self._rules_shown.clear()

    def _record_failure(
        self, session: Session, run: Run, phase: Phase, attempt: Attempt, failure: _Failure
    ) -> None:
        # Test output and model replies can carry secret values (a test printing its
        # environment): nothing of them is stored or sent back to a model unredacted.
        failure.reason = redact(failure.reason, self.env.secrets)
        failure.feedback = redact(failure.feedback or failure.reason, self.env.secrets)
        logger.info(
            "attempt %d failed: %s",
            attempt.number,
            failure.outcome,
            extra={"attempt": attempt.number, "outcome": failure.outcome, "reason": failure.reason},
        )
        execution.finish_attempt(
            session,
            attempt,
            execution.AttemptOutcome(
                outcome=failure.outcome,
                failure_reason=failure.reason,
                failure_signature=failure.signature,
                feedback=failure.feedback or failure.reason,
                edits=attempt.edits,
                governance_verdict=attempt.governance_verdict,
                test_result=attempt.test_result,
                auditor_verdict=attempt.auditor_verdict,
            ),
        )
        record_issue(
            session,
            run,
            IssueCreate(
                issue_key=f"{failure.source.value}:{failure.signature}",
                severity=failure.severity,
                source=failure.source,
                category=phase.task_category,
                title=failure.reason[:200],
                message=failure.reason,
                evidence=failure.details,
                phase_id=phase.phase_id,
                attempt_number=attempt.number,
            ),
        )
        if phase.state is PhaseState.GATE:
            transition_phase(session, phase, PhaseState.EXECUTING, reason=failure.reason)
        session.commit()

    def _fail_phase(self, reason: str, *, policy: bool) -> None:
        """The phase is out of attempts: FAILED, and the run ends — as a policy violation when
        every attempt was refused by governance, else for a human to review."""
        with self.env.sessions() as session:
            phase = session.get_one(Phase, self.phase_pk)
            run = session.get_one(Run, phase.run_pk)
            self.workspace.reset_hard(run.head_commit or self.workspace.base_commit)
            if phase.state is not PhaseState.FAILED:
                transition_phase(session, phase, PhaseState.FAILED, reason=reason)
            session.commit()
            try:
                self._count_rule_outcomes(
                    session,
                    {issue.issue_key for issue, _ in phase_issues(session, run, phase.phase_id)},
                )
                session.commit()
            except RuleTransitionRefusedError as exc:
                logger.info("learned rule not moved: %s", exc.message)
        raise RunStopped(
            RunState.DONE_FAILED_POLICY_VIOLATION
            if policy
            else RunState.DONE_FAILED_REQUIRES_HUMAN_REVIEW,
            f"phase {phase.phase_id} failed: {reason}",
        )

    def _block_for_approval(
        self,
        session: Session,
        run: Run,
        phase: Phase,
        attempt: Attempt,
        verdict: Verdict,
        changes: Mapping[str, str | None],
    ) -> None:
        """Ask a human, and stop: the phase BLOCKED, the run PAUSED. Nothing is written to the
        workspace; the change set is kept with the request and re-applied on the last good
        commit if it is approved (``_apply_approved``), so a crash or a restart in between
        loses nothing."""
        base = run.head_commit or self.workspace.base_commit
        rules = {violation.rule for violation in verdict.violations}
        kind = "protected_path" if Rule.PROTECTED_PATH in rules else "governance_violation"
        why = (
            "the change touches a protected path of the project"
            if kind == "protected_path"
            else "governance refused a change in a safety-critical run"
        )
        subject = {
            "attempt": attempt.number,
            "model": attempt.model,
            "why": why,
            "paths": sorted(changes),
            "violations": [violation.to_dict() for violation in verdict.violations],
            "verdict": verdict.to_dict(),
            "base_commit": base,
            "diff": _proposed_diff(changes, self.workspace.read_text),
        }
        approval = approvals.request_approval(
            session,
            run,
            phase,
            kind=kind,
            subject=subject,
            changes=changes,
            timeout_seconds=self.settings.approval_timeout_seconds,
        )
        transition_phase(
            session, phase, PhaseState.BLOCKED, reason=f"approval {approval.id} needed: {why}"
        )
        transition_run(session, run, RunState.PAUSED, reason=f"waiting for approval {approval.id}")
        execution.finish_attempt(
            session,
            attempt,
            execution.AttemptOutcome(
                outcome="blocked",
                failure_reason=f"waiting for approval {approval.id}: {why}",
                edits=attempt.edits,
                governance_verdict=verdict.to_dict(),
            ),
        )
        session.commit()
        raise RunStopped(RunState.PAUSED, f"waiting for approval {approval.id}")


# What a human may allow: a change outside the phase's scope, or to a protected path. A path out
# of the workspace, into .git/ or through a symlink, binary content and the size limits are never
# waived: those stay plain governance failures.
APPROVABLE_RULES = frozenset({Rule.OUTSIDE_SCOPE, Rule.PROTECTED_PATH})


def _needs_approval(run: Run, verdict: Verdict) -> bool:
    """A refused change set goes to a human when everything wrong with it is approvable and it
    touches a protected path (in any run), or the run is safety-critical."""
    rules = {violation.rule for violation in verdict.violations}
    if not rules or not rules <= APPROVABLE_RULES:
        return False
    return Rule.PROTECTED_PATH in rules or run.safety_profile is SafetyProfile.SAFETY_CRITICAL


def _proposed_diff(
    changes: Mapping[str, str | None], read: Callable[[str], str | None], limit: int = 64_000
) -> str:
    """A unified diff of ``changes`` against the workspace, for the reviewer (nothing is
    written to compute it); cut at ``limit`` characters."""
    parts: list[str] = []
    for path in sorted(changes):
        old, new = read(path), changes[path]
        parts.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"a/{path}" if old is not None else "/dev/null",
                tofile=f"b/{path}" if new is not None else "/dev/null",
            )
        )
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit] + "\n[diff cut]\n"


# Legal ways back from a state a crash left a phase in (the state machine has no shortcut).
_RESTART_PATH: dict[PhaseState, tuple[PhaseState, ...]] = {
    PhaseState.EXECUTING: (),
    PhaseState.CI_RUNNING: (PhaseState.GATE, PhaseState.EXECUTING),
    PhaseState.GATE: (PhaseState.EXECUTING,),
}
_COMPLETE_PATH: dict[PhaseState, tuple[PhaseState, ...]] = {
    PhaseState.EXECUTING: (PhaseState.CI_RUNNING, PhaseState.GATE, PhaseState.COMPLETE),
    PhaseState.CI_RUNNING: (PhaseState.GATE, PhaseState.COMPLETE),
    PhaseState.GATE: (PhaseState.COMPLETE,),
}


class _Heartbeat:
    """A thread proving the executor is alive while a phase runs; it also notices a cancelled
    run (or a lost claim) and sets the executor's cancel event, which stops a running test."""

    def __init__(self, env: ExecutorEnvironment, phase_pk: int, runner: RunExecutor) -> None:
        self.env = env
        self.phase_pk = phase_pk
        self.runner = runner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="autopack-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        interval = self.env.settings.heartbeat_interval_seconds
        while not self._stop.wait(min(interval, 1.0)):
            try:
                with self.env.sessions() as session:
                    phase = session.get_one(Phase, self.phase_pk)
                    if execution.is_cancelled(session, phase.run_pk):
                        self.runner.cancel.set()
                        return
                    if not execution.heartbeat(session, phase, self.env.worker_id):
                        self.runner.cancel.set()
                        return
            except Exception:  # a missed beat is not fatal; the next one may succeed
                logger.warning("heartbeat failed", exc_info=True)


def _refuse_foreign_workspace(workspace: Workspace, head: str) -> None:
    """A run's last committed phase must be in its workspace. It is not when the run was
    executed on a worker whose runs directory this one does not share (the workspace here was
    just cloned from the project): carrying on would redo, and commit again, what is done, so
    the run stops saying why."""
    try:
        workspace.resolve(head)
    except WorkspaceError:
        raise RunStopped(
            RunState.DONE_FAILED_ENVIRONMENT,
            f"the run's phases were committed up to {head[:12]} in a workspace this worker "
            "cannot see; workers that take over each other's runs must share AUTOPACK_RUNS_DIR "
            "(docs/workers.md)",
        ) from None


_DURATION = re.compile(r"\b(in|took) \d+(?:\.\d+)?s\b")


def stable_output(text: str, workspace: Path) -> str:
    """Test output as fed back to the model: without the workspace's absolute path or the run's
    timings, so the same failure reads the same in every run (prompt caches and replay keys
    depend on it)."""
    text = text.replace(str(workspace) + "/", "").replace(str(workspace), ".")
    return _DURATION.sub(r"\1 [time]", text)


def _overrides(run: Run) -> dict[str, str | list[str]] | None:
    """The plan's per-run model overrides (``run.models``), as it was submitted."""
    models = (run.plan or {}).get("run", {}).get("models")
    return models if isinstance(models, dict) else None


def _signature(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _git(workspace: Workspace, base_env: Mapping[str, str], *args: str) -> None:
    """A git command in the run's own clone (never the user's repository)."""
    subprocess.run(
        ["git", "-C", str(workspace.path), *args],
        env=git_environment(base_env),
        check=True,
        capture_output=True,
        timeout=300,
    )


def _discard_checkout(workspace: Workspace, base_env: Mapping[str, str], checkout: Path) -> None:
    """Remove a baseline checkout that an executor killed while the baseline ran left behind:
    `git worktree add` refuses a path that exists or that git still lists."""
    if checkout.exists():
        shutil.rmtree(checkout, ignore_errors=True)
    _git(workspace, base_env, "worktree", "prune")


def _retrieval_query(brief: PhaseBrief, feedback: str | None) -> str:
    """What the code index is asked for a phase: its task, and on a retry the failure too
    (tracebacks name the files at fault)."""
    parts = [brief.name, brief.description, *brief.acceptance_criteria]
    if feedback:
        parts.append(feedback[:FAILURE_QUERY_CHARS])
    return "\n".join(part for part in parts if part)


def _phase_summary(phase: Phase, attempt: Attempt, paths: list[str]) -> str:
    changed = ", ".join(paths) if paths else "nothing"
    return (
        f"{phase.name} ({phase.phase_id}, {phase.task_category or 'uncategorised'}): "
        f"{phase.description or ''}\n"
        f"Committed {phase.commit_sha or ''} after {attempt.number} attempt(s); changed: {changed}"
    )


def _render_prompt(messages: tuple[Message, ...]) -> str:
    return "\n\n".join(f"## {m.role}\n\n{m.content}" for m in messages)


def _test_summary(result: TestRun, verdict: gate_module.GateVerdict) -> dict[str, Any]:
    return {
        "command": result.command,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration_s": round(result.duration_s, 3),
        "counts": result.summary(),
        "passed": verdict.passed,
        "reason": verdict.reason,
        "new_failures": verdict.new_failures,
        "fixed": verdict.fixed,
        "still_failing": verdict.still_failing,
    }


def run_summary_markdown(session: Session, run: Run) -> str:
    """The run in one page: outcome, phases with attempts, tokens and cost against caps."""
    lines = [
        f"# Run {run.run_id}",
        "",
        f"- state: **{run.state.value}**"
        + (f" — {run.failure_reason}" if run.failure_reason else ""),
        f"- branch: `{run.integration_branch}` from `{(run.base_commit or '')[:12]}` "
        f"to `{(run.head_commit or '')[:12]}`",
        f"- tokens: {run.tokens_used}" + (f" of {run.token_cap}" if run.token_cap else ""),
        f"- cost: ${run.cost_usd}" + (f" of ${run.cost_cap_usd}" if run.cost_cap_usd else ""),
        "",
        "| phase | state | attempts | tokens | cost | commit |",
        "|---|---|---|---|---|---|",
    ]
    for phase in execution.phases_in_order(session, run):
        lines.append(
            f"| {phase.phase_id} | {phase.state.value} | {phase.attempts_count} | "
            f"{phase.tokens_used} | ${phase.cost_usd} | {(phase.commit_sha or '')[:12]} |"
        )
    return "\n".join(lines) + "\n"


ProgressCallback = Callable[[str], None]
__all__ = ["AutopackError", "ExecutorEnvironment", "RunExecutor", "RunStopped"]
