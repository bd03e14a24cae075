"""Budget checks before a call: the worst case must fit, and no sequence of calls can overshoot."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from autopack.llm.budget import (
    BudgetExhaustedError,
    BudgetLimits,
    BudgetScope,
    BudgetUsage,
    check_call,
    fit_max_tokens,
)
from autopack.llm.pricing import ModelSpec, worst_case_cost
from autopack.llm.provider import Completion

SPEC = ModelSpec(
    provider="anthropic",
    input_usd_per_mtok=Decimal("3"),
    output_usd_per_mtok=Decimal("15"),
    cache_read_usd_per_mtok=Decimal("0.3"),
    cache_write_usd_per_mtok=Decimal("3.75"),
    context_window=200_000,
    max_output_tokens=64_000,
)
FREE = ModelSpec(
    provider="openai",
    input_usd_per_mtok=Decimal(0),
    output_usd_per_mtok=Decimal(0),
    context_window=32_000,
    max_output_tokens=4096,
)


def test_call_that_fits_is_allowed() -> None:
    scopes = [
        BudgetScope("phase p1", BudgetLimits(token_cap=20_000), BudgetUsage(1000)),
        ("run r1", BudgetLimits(cost_cap_usd=Decimal("1")), BudgetUsage(0, Decimal("0.5"))),
    ]
    allowance = check_call(scopes, 10_000, 8192, SPEC)
    assert allowance.max_tokens == 8192
    assert allowance.worst_case_tokens == 18_192
    assert allowance.worst_case_cost_usd == Decimal("0.152880")


def test_token_cap_refuses_the_call_and_says_why() -> None:
    scopes = [BudgetScope("phase p1", BudgetLimits(token_cap=20_000), BudgetUsage(5000))]
    with pytest.raises(BudgetExhaustedError) as info:
        check_call(scopes, 10_000, 8192, SPEC)
    error = info.value
    assert (error.scope, error.what, error.needed, error.remaining) == (
        "phase p1",
        "tokens",
        18_192,
        15_000,
    )
    assert error.message == (
        "phase p1 budget exhausted: the next model call could use up to 18,192 tokens, "
        "but only 15,000 of its 20,000 remain"
    )


def test_cost_cap_refuses_the_call_and_names_the_first_scope_that_fails() -> None:
    scopes = [
        BudgetScope("phase p1", BudgetLimits(cost_cap_usd=Decimal("5")), BudgetUsage()),
        BudgetScope("run r1", BudgetLimits(cost_cap_usd=Decimal("2")), BudgetUsage(0, Decimal(2))),
        BudgetScope("tier t1", BudgetLimits(cost_cap_usd=Decimal("0")), BudgetUsage()),
    ]
    with pytest.raises(BudgetExhaustedError) as info:
        check_call(scopes, 10, 10, SPEC)
    assert (info.value.scope, info.value.what) == ("run r1", "cost_usd")
    assert info.value.remaining == Decimal(0)
    assert "$0.000180" in info.value.message


def test_exact_fit_is_allowed_and_one_more_token_is_not() -> None:
    cap = worst_case_cost(SPEC, 1000, 1000)
    scopes = [("run", BudgetLimits(token_cap=2000, cost_cap_usd=cap), BudgetUsage())]
    check_call(scopes, 1000, 1000, SPEC)
    with pytest.raises(BudgetExhaustedError, match="tokens"):
        check_call(scopes, 1000, 1001, SPEC)


def test_no_caps_means_no_limit() -> None:
    check_call([("run", BudgetLimits(), BudgetUsage(10**12, Decimal(10**9)))], 10**6, 10**6, SPEC)


def test_usage_over_the_cap_leaves_nothing() -> None:
    scope = BudgetScope("run", BudgetLimits(token_cap=10), BudgetUsage(50))
    assert scope.remaining_tokens == 0


def test_fit_shrinks_max_tokens_to_what_remains() -> None:
    scopes = [("phase", BudgetLimits(token_cap=12_000), BudgetUsage())]
    allowance = fit_max_tokens(scopes, 10_000, 8192, SPEC)
    assert allowance.max_tokens == 2000
    # cost: $0.10 left, prompt 10k tokens at $3 = $0.03, so 0.07 / 15e-6 = 4666 output tokens
    scopes = [("run", BudgetLimits(cost_cap_usd=Decimal("0.10")), BudgetUsage())]
    allowance = fit_max_tokens(scopes, 10_000, 8192, SPEC)
    assert allowance.max_tokens == 4666
    assert allowance.worst_case_cost_usd <= Decimal("0.10")
    with pytest.raises(BudgetExhaustedError):
        check_call(scopes, 10_000, 4667, SPEC)


def test_fit_keeps_the_full_size_when_it_fits() -> None:
    allowance = fit_max_tokens(
        [("run", BudgetLimits(token_cap=10**6), BudgetUsage())], 10, 500, SPEC
    )
    assert allowance.max_tokens == 500


def test_fit_refuses_below_the_floor_with_the_floors_figures() -> None:
    scopes = [("phase", BudgetLimits(token_cap=10_500), BudgetUsage())]
    with pytest.raises(BudgetExhaustedError) as info:
        fit_max_tokens(scopes, 10_000, 8192, SPEC, floor=1024)
    assert info.value.needed == 11_024
    # a smaller floor accepts the 500 tokens that remain
    assert fit_max_tokens(scopes, 10_000, 8192, SPEC, floor=256).max_tokens == 500
    # a request smaller than the floor only needs itself
    assert fit_max_tokens(scopes, 10_000, 400, SPEC, floor=1024).max_tokens == 400


def test_fit_with_a_free_model_still_checks_tokens_and_prompt_cost() -> None:
    scopes = [("run", BudgetLimits(token_cap=5000, cost_cap_usd=Decimal(0)), BudgetUsage())]
    assert fit_max_tokens(scopes, 1000, 8192, FREE).max_tokens == 4000


def test_fit_when_the_prompt_alone_exceeds_the_cost_cap() -> None:
    scopes = [("run", BudgetLimits(cost_cap_usd=Decimal("0.001")), BudgetUsage())]
    with pytest.raises(BudgetExhaustedError, match=r"could use up to \$"):
        fit_max_tokens(scopes, 1000, 8192, SPEC, floor=1)


def test_fit_with_an_off_grid_remainder_never_overshoots() -> None:
    # A cap with more decimals than the ledger keeps must still never be overshot after rounding.
    scopes = [("run", BudgetLimits(cost_cap_usd=Decimal("0.0012345678")), BudgetUsage())]
    allowance = fit_max_tokens(scopes, 0, 8192, SPEC, floor=1)
    assert allowance.worst_case_cost_usd <= Decimal("0.0012345678")
    assert allowance.max_tokens == 82  # 82 * 15e-6 = 0.00123 <= 0.001234 < 83 * 15e-6


def _random_spec(rng: random.Random) -> ModelSpec:
    def price() -> Decimal:
        return Decimal(rng.choice([0, 1, 7, 150, 600, 1_000_000, 3_000_000, 75_000_000])) / 10**6

    return ModelSpec(
        provider="anthropic",
        input_usd_per_mtok=price(),
        output_usd_per_mtok=price(),
        cache_read_usd_per_mtok=price() if rng.random() < 0.5 else None,
        cache_write_usd_per_mtok=price() if rng.random() < 0.5 else None,
        context_window=1_000_000,
        max_output_tokens=100_000,
    )


def _actual_usage(
    rng: random.Random, prompt_upper: int, max_tokens: int, writes: bool
) -> Completion:
    """Any usage a provider could report for the call, the exact worst case included."""
    if rng.random() < 0.3:
        prompt, output = prompt_upper, max_tokens
    else:
        prompt, output = rng.randint(0, prompt_upper), rng.randint(0, max_tokens)
    cached = rng.randint(0, prompt)
    written = rng.randint(0, prompt - cached) if writes else 0
    return Completion(
        "x",
        "m",
        "p",
        input_tokens=prompt - cached - written,
        output_tokens=output,
        cache_read_tokens=cached,
        cache_write_tokens=written,
    )


def test_no_sequence_of_calls_exceeds_any_cap() -> None:
    """Random runs: scopes with random caps, calls with random prompts and sizes, actual usage
    anywhere up to the worst case. Whatever the path, no scope ever ends above a cap."""
    rng = random.Random(20_240_601)
    calls_made = refused = 0
    for _ in range(400):
        spec = _random_spec(rng)
        names = ["phase", "tier", "run"][: rng.randint(1, 3)]
        limits = {
            name: BudgetLimits(
                token_cap=rng.choice([None, rng.randint(0, 200_000)]),
                cost_cap_usd=rng.choice([None, Decimal(rng.randint(0, 3_000_000)) / 10**6]),
            )
            for name in names
        }
        usage = {name: BudgetUsage() for name in names}
        for _ in range(rng.randint(1, 40)):
            prompt_upper = rng.randint(0, 30_000)
            max_tokens = rng.randint(1, 16_384)
            writes = rng.random() < 0.3
            scopes = [BudgetScope(name, limits[name], usage[name]) for name in names]
            try:
                if rng.random() < 0.5:
                    allowance = check_call(
                        scopes, prompt_upper, max_tokens, spec, cache_writes_possible=writes
                    )
                else:
                    allowance = fit_max_tokens(
                        scopes,
                        prompt_upper,
                        max_tokens,
                        spec,
                        floor=rng.randint(1, 2048),
                        cache_writes_possible=writes,
                    )
            except BudgetExhaustedError:
                refused += 1
                continue
            assert allowance.max_tokens <= max_tokens
            calls_made += 1
            actual = _actual_usage(rng, prompt_upper, allowance.max_tokens, writes)
            for name in names:
                usage[name] = usage[name].plus_completion(actual, spec)
                cap = limits[name]
                if cap.token_cap is not None:
                    assert usage[name].tokens <= cap.token_cap
                if cap.cost_cap_usd is not None:
                    assert usage[name].cost_usd <= cap.cost_cap_usd
    # The loop exercised both outcomes many times, or it proved nothing.
    assert calls_made > 1000
    assert refused > 1000


def test_fit_is_the_largest_size_that_fits() -> None:
    rng = random.Random(11)
    for _ in range(500):
        spec = _random_spec(rng)
        scopes = [
            (
                "run",
                BudgetLimits(
                    token_cap=rng.choice([None, rng.randint(1000, 50_000)]),
                    cost_cap_usd=Decimal(rng.randint(0, 500_000)) / 10**6,
                ),
                BudgetUsage(),
            )
        ]
        prompt, max_tokens = rng.randint(0, 20_000), rng.randint(1, 16_384)
        try:
            allowance = fit_max_tokens(scopes, prompt, max_tokens, spec, floor=1)
        except BudgetExhaustedError:
            with pytest.raises(BudgetExhaustedError):
                check_call(scopes, prompt, 1, spec)
            continue
        if allowance.max_tokens < max_tokens:
            with pytest.raises(BudgetExhaustedError):
                check_call(scopes, prompt, allowance.max_tokens + 1, spec)
