"""Drafting a plan: ask the planner model, validate its reply, repair it once, or reject it.

One call with the idea, the repository map and the detected test setup; when the reply is not a
valid plan, one more call that shows the model its reply and every problem with its location; a
second invalid reply rejects the draft (PlanDraftRejected, the problems in its details). Each call
goes to the llm_calls ledger (role ``planner``, no run) when a session factory is given, in a
short transaction of its own: none is open while the model thinks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from autopack.errors import ConfigurationError, InvalidInputError, UpstreamError
from autopack.llm.pricing import completion_cost, estimate_prompt_tokens
from autopack.llm.provider import (
    CallContext,
    Completion,
    CompletionRequest,
    CredentialCheck,
    Message,
    Provider,
    ProviderError,
)
from autopack.llm.routing import COMPLEXITIES, ModelChoice, Router
from autopack.planner.prompts import planner_messages, repair_messages
from autopack.planner.reply import ReplyContext, ReplyInvalid, check_reply
from autopack.planner.repo import snapshot
from autopack.plans.loader import load_plan
from autopack.plans.models import Plan
from autopack.usage.models import LlmCall, LlmRole
from autopack.usage.service import record_llm_call

# The map is what lets the model name real files; beyond this it mostly lists more of the same.
DEFAULT_MAP_TOKENS = 8_000
# Kept free in the context window for the estimate's error and the repair round's wording.
PROMPT_MARGIN_TOKENS = 1_000
MAX_IDEA_CHARS = 20_000
# Ledger rows keep the start of the problems, enough to see why a reply was refused.
MAX_LEDGER_ERROR_CHARS = 2_000


@dataclass(frozen=True)
class PlannerCall:
    """One planner model call. ``outcome``: ``ok`` (a valid plan), ``invalid``, ``truncated``
    (cut off at max_tokens) or ``error`` (the provider failed; no tokens are known)."""

    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int
    outcome: str
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class PlanDraft:
    """A drafted plan. ``plan`` is validated and normalised (indexes filled, execution order);
    ``yaml`` is the plan as the model wrote it (its fenced block), which loads to ``plan``."""

    plan: Plan
    yaml: str
    model: str
    calls: tuple[PlannerCall, ...]

    @property
    def repaired(self) -> bool:
        """True when the first reply was invalid and the repair round's was accepted."""
        return len(self.calls) > 1

    @property
    def input_tokens(self) -> int:
        return sum(call.input_tokens for call in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(call.output_tokens for call in self.calls)

    @property
    def cost_usd(self) -> Decimal:
        return sum((call.cost_usd for call in self.calls), Decimal(0))


class PlanDraftRejected(InvalidInputError):  # noqa: N818 - reads as the outcome it reports
    """The model's plan was invalid twice; ``details`` lists the problems of its last reply."""

    code = "plan_draft_rejected"

    def __init__(
        self,
        problems: list[dict[str, str]],
        *,
        calls: Sequence[PlannerCall],
        replies: Sequence[str],
    ) -> None:
        count = len(problems)
        super().__init__(
            "the planner model's plan was invalid twice, after one repair round "
            f"({count} problem{'s' if count != 1 else ''} in its last reply):",
            details=problems,
        )
        self.calls = tuple(calls)
        self.replies = tuple(replies)


class PlannerProviderError(UpstreamError):
    """The planner model could not be called. Keeps the provider error's code (``provider_error``,
    ``replay_miss`` ...); the provider layer has already retried what could be retried."""

    def __init__(self, error: ProviderError, *, calls: Sequence[PlannerCall]) -> None:
        super().__init__(
            f"the planner model call failed: {error.message}",
            details={
                "provider": error.provider,
                "model": error.model,
                "retryable": error.retryable,
                "status_code": error.status_code,
            },
        )
        self.code = error.code
        self.calls = tuple(calls)


def draft_plan(
    idea: str,
    repo: Path,
    *,
    provider: Provider,
    router: Router,
    complexity: str = "medium",
    project: str | None = None,
    sessions: sessionmaker[Session] | None = None,
    map_tokens: int = DEFAULT_MAP_TOKENS,
) -> PlanDraft:
    """Draft a plan for ``idea`` in the repository at ``repo`` (a local directory).

    ``complexity`` picks the planner model from routing; ``project`` is the registered project the
    plan is for (the plan must then name it; without one it must name none). Raises
    PlanDraftRejected, PlannerProviderError, ConfigurationError (no key for the planner model),
    or InvalidInputError (bad arguments, a repository that is not a local directory).
    """
    idea = _checked_idea(idea)
    if complexity not in COMPLEXITIES:
        raise InvalidInputError(
            f"complexity must be one of {list(COMPLEXITIES)}, got {complexity!r}",
            details=[{"loc": "complexity", "message": f"expected one of {list(COMPLEXITIES)}"}],
        )
    repository = snapshot(repo)
    choice = router.select("planner", complexity)
    _check_credentials(provider, choice.model)
    without_map = planner_messages(idea, "", repository.tests, project=project)
    # The repair round repeats the first prompt plus the first reply (at most max_tokens), and
    # needs room for its own reply: the map must leave space for both.
    room = (
        choice.spec.context_window
        - estimate_prompt_tokens(without_map)
        - 2 * choice.max_tokens
        - PROMPT_MARGIN_TOKENS
    )
    repo_map = repository.repo_map.render(min(map_tokens, room)) if room > 0 else ""
    if not repo_map and repository.repo_map.files:
        # Without this line the model would read an empty map as an empty repository.
        repo_map = f"… {len(repository.repo_map.files)} files, none shown: no room for the map"
    messages = planner_messages(idea, repo_map, repository.tests, project=project)
    context = ReplyContext(files=frozenset(repository.files), router=router, project=project)

    calls: list[PlannerCall] = []
    replies: list[str] = []
    problems: list[dict[str, str]] = []
    for _round in range(2):
        completion, latency_ms = _complete(provider, choice, messages, calls, sessions)
        replies.append(completion.text)
        cut_off_at = choice.max_tokens if completion.truncated else None
        try:
            text = check_reply(completion.text, context, cut_off_at=cut_off_at)
        except ReplyInvalid as invalid:
            problems = invalid.problems
            outcome = "truncated" if completion.truncated else "invalid"
            calls.append(_record(sessions, choice, completion, latency_ms, outcome, problems))
            messages = repair_messages(messages, completion.text, problems)
            continue
        calls.append(_record(sessions, choice, completion, latency_ms, "ok", []))
        return PlanDraft(
            plan=load_plan(text, fmt="yaml"),
            yaml=text.strip("\n") + "\n",
            model=choice.model,
            calls=tuple(calls),
        )
    raise PlanDraftRejected(problems, calls=calls, replies=replies)


def _checked_idea(idea: str) -> str:
    stripped = idea.strip()
    if not stripped:
        raise InvalidInputError(
            "the idea is empty: say what should be built",
            details=[{"loc": "idea", "message": "must not be empty"}],
        )
    if len(stripped) > MAX_IDEA_CHARS:
        raise InvalidInputError(
            f"the idea is {len(stripped)} characters long; at most {MAX_IDEA_CHARS} are accepted",
            details=[{"loc": "idea", "message": f"at most {MAX_IDEA_CHARS} characters"}],
        )
    return stripped


def _check_credentials(provider: Provider, model: str) -> None:
    """A missing key is the server's configuration, not a failing provider: said before any call."""
    if isinstance(provider, CredentialCheck):
        missing = provider.missing_credentials([model])
        if missing:
            raise ConfigurationError(
                f"the planner model {model} cannot be called: {'; '.join(missing)}",
                details=[{"loc": "planner", "message": problem} for problem in missing],
            )


def _complete(
    provider: Provider,
    choice: ModelChoice,
    messages: tuple[Message, ...],
    calls: list[PlannerCall],
    sessions: sessionmaker[Session] | None,
) -> tuple[Completion, int]:
    request = CompletionRequest(model=choice.model, messages=messages, max_tokens=choice.max_tokens)
    started = time.monotonic()
    try:
        completion = provider.complete(request, context=CallContext(role=LlmRole.PLANNER.value))
    except ProviderError as exc:
        failed = PlannerCall(
            model=choice.model,
            provider=choice.provider,
            input_tokens=0,
            output_tokens=0,
            cost_usd=Decimal(0),
            latency_ms=_since(started),
            outcome="error",
        )
        _write_ledger(sessions, failed, exc.message)
        raise PlannerProviderError(exc, calls=[*calls, failed]) from None
    return completion, _since(started)


def _record(
    sessions: sessionmaker[Session] | None,
    choice: ModelChoice,
    completion: Completion,
    latency_ms: int,
    outcome: str,
    problems: list[dict[str, str]],
) -> PlannerCall:
    call = PlannerCall(
        model=completion.model,
        provider=completion.provider,
        input_tokens=completion.prompt_tokens,
        output_tokens=completion.output_tokens,
        cache_read_tokens=completion.cache_read_tokens,
        cache_write_tokens=completion.cache_write_tokens,
        cost_usd=completion_cost(choice.spec, completion),
        latency_ms=latency_ms,
        outcome=outcome,
    )
    error = "; ".join(f"{p['loc']}: {p['message']}" for p in problems) if problems else None
    _write_ledger(sessions, call, error[:MAX_LEDGER_ERROR_CHARS] if error else None)
    return call


def _write_ledger(
    sessions: sessionmaker[Session] | None, call: PlannerCall, error: str | None
) -> None:
    if sessions is None:
        return
    with sessions() as session:
        record_llm_call(
            session,
            LlmCall(
                provider=call.provider,
                model=call.model,
                role=LlmRole.PLANNER,
                run_pk=None,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cache_read_tokens=call.cache_read_tokens,
                cache_write_tokens=call.cache_write_tokens,
                cost_usd=call.cost_usd,
                latency_ms=call.latency_ms,
                outcome=call.outcome,
                error=error,
            ),
        )
        session.commit()


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
