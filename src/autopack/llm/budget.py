"""Budgets checked before a model call: the worst case of the call must fit in what remains.

A *scope* is anything with caps: the run, a tier, a phase. Before a call, its worst case is
``prompt_tokens_upper + max_tokens`` tokens, costing ``worst_case_cost`` (every prompt token at the
dearest price it could be billed at, the whole ``max_tokens`` of output, rounded up to the
micro-dollar). The call is made only if that fits in the remainder of EVERY scope. After the call,
its actual tokens and cost (``completion_cost``, also rounded up) are added to every scope.

Why no run can exceed a cap: the actual usage of a call is at most its worst case (the prompt
bound is a true bound and a provider never returns more than ``max_tokens``; cost is monotonic in
every token count and rounding up is monotonic), and the worst case was at most the remainder. So
after every call, usage <= cap. ``tests/llm/test_budget.py`` checks this over random sequences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal, NamedTuple

from autopack.errors import AutopackError
from autopack.llm.pricing import (
    MILLION,
    ModelSpec,
    completion_cost,
    floor_usd,
    worst_case_cost,
)
from autopack.llm.provider import Completion

BudgetDimension = Literal["tokens", "cost_usd"]
# Below this, a reply is rarely worth having: a builder cannot write a useful edit in a few
# hundred tokens. Callers with smaller needs (an auditor verdict) pass their own floor.
DEFAULT_MAX_TOKENS_FLOOR = 1024


class BudgetExhaustedError(AutopackError):
    """The worst case of a call does not fit in what remains of a scope; the call is not made."""

    code = "budget_exhausted"

    def __init__(
        self,
        scope: str,
        what: BudgetDimension,
        needed: int | Decimal,
        remaining: int | Decimal,
        cap: int | Decimal,
    ) -> None:
        if what == "tokens":
            amounts = f"up to {needed:,} tokens, but only {remaining:,} of its {cap:,} remain"
        else:
            amounts = f"up to ${needed}, but only ${remaining} of its ${cap} remain"
        super().__init__(
            f"{scope} budget exhausted: the next model call could use {amounts}",
            details={
                "scope": scope,
                "what": what,
                "needed": str(needed),
                "remaining": str(remaining),
                "cap": str(cap),
            },
        )
        self.scope = scope
        self.what = what
        self.needed = needed
        self.remaining = remaining
        self.cap = cap


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Caps of one scope; None means no cap on that dimension."""

    token_cap: int | None = None
    cost_cap_usd: Decimal | None = None

    def __post_init__(self) -> None:
        if self.token_cap is not None and self.token_cap < 0:
            raise ValueError(f"token_cap must not be negative, got {self.token_cap}")
        if self.cost_cap_usd is not None and self.cost_cap_usd < 0:
            raise ValueError(f"cost_cap_usd must not be negative, got {self.cost_cap_usd}")


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """What a scope has used so far."""

    tokens: int = 0
    cost_usd: Decimal = Decimal(0)

    def plus(self, tokens: int, cost_usd: Decimal) -> BudgetUsage:
        return BudgetUsage(self.tokens + tokens, self.cost_usd + cost_usd)

    def plus_completion(self, completion: Completion, spec: ModelSpec) -> BudgetUsage:
        """Usage after a call: all its tokens, and its cost rounded up to the micro-dollar."""
        return self.plus(completion.total_tokens, completion_cost(spec, completion))


class BudgetScope(NamedTuple):
    """One scope to check, e.g. ``BudgetScope("phase p1", limits, usage)``; a plain
    ``(name, limits, usage)`` tuple works as well."""

    name: str
    limits: BudgetLimits
    usage: BudgetUsage

    @property
    def remaining_tokens(self) -> int | None:
        cap = self.limits.token_cap
        return None if cap is None else max(0, cap - self.usage.tokens)

    @property
    def remaining_cost_usd(self) -> Decimal | None:
        cap = self.limits.cost_cap_usd
        return None if cap is None else max(Decimal(0), cap - self.usage.cost_usd)


@dataclass(frozen=True, slots=True)
class CallAllowance:
    """A call that fits: the ``max_tokens`` to send and its worst case."""

    max_tokens: int
    worst_case_tokens: int
    worst_case_cost_usd: Decimal


ScopeLike = BudgetScope | tuple[str, BudgetLimits, BudgetUsage]


def check_call(
    scopes: Iterable[ScopeLike],
    prompt_tokens_upper: int,
    max_tokens: int,
    spec: ModelSpec,
    *,
    cache_writes_possible: bool = False,
) -> CallAllowance:
    """Allow a call only if its worst case fits in every scope; else BudgetExhaustedError for the
    first scope (in the order given: pass the narrowest first) it does not fit.

    ``prompt_tokens_upper`` must be a true upper bound of the prompt's tokens:
    ``pricing.prompt_tokens_upper_bound(messages)``, not the estimate used to fit context.
    """
    if prompt_tokens_upper < 0 or max_tokens < 1:
        raise ValueError("prompt_tokens_upper must be >= 0 and max_tokens >= 1")
    tokens = prompt_tokens_upper + max_tokens
    cost = worst_case_cost(
        spec, prompt_tokens_upper, max_tokens, cache_writes_possible=cache_writes_possible
    )
    for scope in map(_as_scope, scopes):
        remaining_tokens = scope.remaining_tokens
        if remaining_tokens is not None and tokens > remaining_tokens:
            assert scope.limits.token_cap is not None
            raise BudgetExhaustedError(
                scope.name, "tokens", tokens, remaining_tokens, scope.limits.token_cap
            )
        remaining_cost = scope.remaining_cost_usd
        if remaining_cost is not None and cost > remaining_cost:
            assert scope.limits.cost_cap_usd is not None
            raise BudgetExhaustedError(
                scope.name, "cost_usd", cost, remaining_cost, scope.limits.cost_cap_usd
            )
    return CallAllowance(max_tokens, tokens, cost)


def fit_max_tokens(
    scopes: Iterable[ScopeLike],
    prompt_tokens_upper: int,
    max_tokens: int,
    spec: ModelSpec,
    *,
    floor: int = DEFAULT_MAX_TOKENS_FLOOR,
    cache_writes_possible: bool = False,
) -> CallAllowance:
    """Like ``check_call``, but when the full ``max_tokens`` does not fit, lower it to the most
    that does, as long as that is at least ``floor`` (or the requested ``max_tokens``, if smaller).

    A smaller answer is better than none near the end of a budget, and the worst-case rule is kept
    exactly: the returned ``max_tokens`` is itself checked by ``check_call``, so a call made with
    it can never overshoot. Below the floor, the BudgetExhaustedError says what even the floor
    would need.
    """
    scope_list = [_as_scope(scope) for scope in scopes]
    if prompt_tokens_upper < 0 or max_tokens < 1:
        raise ValueError("prompt_tokens_upper must be >= 0 and max_tokens >= 1")
    best = max_tokens
    prompt_price = spec.input_usd_per_mtok
    prompt_price = max(prompt_price, spec.cache_read_price)
    if cache_writes_possible:
        prompt_price = max(prompt_price, spec.cache_write_price)
    output_micro = _micro(spec.output_usd_per_mtok)
    for scope in scope_list:
        remaining_tokens = scope.remaining_tokens
        if remaining_tokens is not None:
            best = min(best, remaining_tokens - prompt_tokens_upper)
        remaining_cost = scope.remaining_cost_usd
        if remaining_cost is not None and output_micro > 0:
            # Exact integer arithmetic in pico-dollars (prices have at most 6 decimals, so a
            # price in micro-dollars per million tokens is an integer): the largest output that
            # keeps the exact cost within the remainder, rounded down to whole micro-dollars, so
            # that rounding the cost up to micro-dollars still fits.
            budget_pico = int(floor_usd(remaining_cost) * MILLION * MILLION)
            prompt_pico = prompt_tokens_upper * _micro(prompt_price)
            best = min(best, (budget_pico - prompt_pico) // output_micro)
    needed_floor = min(floor, max_tokens)
    if best < max(needed_floor, 1):
        # Raises with the figures of the smallest acceptable call.
        check_call(
            scope_list,
            prompt_tokens_upper,
            max(needed_floor, 1),
            spec,
            cache_writes_possible=cache_writes_possible,
        )
        # Unreachable: a floor that fits every scope would have left `best` at or above it.
        raise AssertionError("fit_max_tokens: the floor fits although the fitted size did not")
    return check_call(
        scope_list, prompt_tokens_upper, best, spec, cache_writes_possible=cache_writes_possible
    )


def _micro(price: Decimal) -> int:
    # Rounded up: a price with more than 6 decimals (impossible through ModelSpec) would make the
    # fitted size smaller, never larger.
    return int((price * MILLION).to_integral_value(rounding=ROUND_CEILING))


def _as_scope(scope: ScopeLike) -> BudgetScope:
    return scope if isinstance(scope, BudgetScope) else BudgetScope(*scope)
