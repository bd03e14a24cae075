"""Exact costs and prompt token bounds."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from pydantic import ValidationError

from autopack.llm.pricing import (
    PER_MESSAGE_OVERHEAD_TOKENS,
    PER_REQUEST_OVERHEAD_TOKENS,
    ModelSpec,
    completion_cost,
    cost_usd,
    estimate_prompt_tokens,
    prompt_tokens_upper_bound,
    quantize_usd,
    worst_case_cost,
)
from autopack.llm.provider import Completion, Message

SONNET = ModelSpec(
    provider="anthropic",
    input_usd_per_mtok=Decimal("3"),
    output_usd_per_mtok=Decimal("15"),
    cache_read_usd_per_mtok=Decimal("0.30"),
    cache_write_usd_per_mtok=Decimal("3.75"),
    context_window=200_000,
    max_output_tokens=64_000,
)
MINI = ModelSpec(
    provider="openai",
    input_usd_per_mtok=Decimal("0.15"),
    output_usd_per_mtok=Decimal("0.6"),
    context_window=128_000,
    max_output_tokens=16_384,
)


def test_cost_is_exact() -> None:
    assert cost_usd(SONNET, 1_000_000, 0) == Decimal("3")
    assert cost_usd(SONNET, 1234, 567) == Decimal("0.012207")  # 1234*3e-6 + 567*15e-6
    assert cost_usd(MINI, 1, 1) == Decimal("0.00000075")  # below a micro-dollar, not rounded
    # The float arithmetic this replaces would give 0.30000000000000004-style residue.
    assert cost_usd(MINI, 1_000_000, 1_000_000) * 3 == Decimal("2.25")


def test_cache_tokens_have_their_own_prices_and_fall_back_to_input() -> None:
    assert cost_usd(SONNET, 0, 0, cache_read_tokens=1_000_000) == Decimal("0.30")
    assert cost_usd(SONNET, 0, 0, cache_write_tokens=1_000_000) == Decimal("3.75")
    # MINI declares no cache prices: billed as input, never cheaper than the truth.
    assert cost_usd(MINI, 0, 0, cache_read_tokens=1_000_000) == Decimal("0.15")


def test_negative_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="output_tokens"):
        cost_usd(SONNET, 1, -1)


def test_completion_cost_rounds_up_to_the_micro_dollar() -> None:
    completion = Completion("x", "gpt-5.4-mini", "openai", input_tokens=1, output_tokens=1)
    assert completion_cost(MINI, completion) == Decimal("0.000001")
    assert quantize_usd(Decimal("0.0000010")) == Decimal("0.000001")
    assert quantize_usd(Decimal("0.0000010001")) == Decimal("0.000002")


def test_worst_case_cost() -> None:
    # 10k prompt at $3 + 8192 output at $15 = 0.03 + 0.12288
    assert worst_case_cost(SONNET, 10_000, 8192) == Decimal("0.152880")
    # cache writes, when the request asks for caching, cost more than input
    assert worst_case_cost(SONNET, 10_000, 0, cache_writes_possible=True) == Decimal("0.037500")
    assert worst_case_cost(MINI, 1, 0) == Decimal("0.000001")


def test_worst_case_bounds_every_split_of_the_same_tokens() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        prompt, max_tokens = rng.randint(0, 50_000), rng.randint(1, 20_000)
        cached = rng.randint(0, prompt)
        written = rng.randint(0, prompt - cached)
        actual = Completion(
            "x",
            "m",
            "p",
            input_tokens=prompt - cached - written,
            output_tokens=rng.randint(0, max_tokens),
            cache_read_tokens=cached,
            cache_write_tokens=written,
        )
        bound = worst_case_cost(SONNET, prompt, max_tokens, cache_writes_possible=True)
        assert completion_cost(SONNET, actual) <= bound


def test_prices_are_decimals_with_at_most_six_places() -> None:
    with pytest.raises(ValidationError):
        ModelSpec(
            provider="openai",
            input_usd_per_mtok=Decimal("0.0000001"),
            output_usd_per_mtok=Decimal(1),
            context_window=10,
            max_output_tokens=1,
        )


def test_prompt_upper_bound_is_one_token_per_byte_plus_framing() -> None:
    messages = [Message("system", "abc"), Message("user", "é")]  # 3 + 2 bytes
    assert prompt_tokens_upper_bound(messages) == (
        PER_REQUEST_OVERHEAD_TOKENS + 2 * PER_MESSAGE_OVERHEAD_TOKENS + 5
    )


@pytest.mark.parametrize(
    "text",
    [
        "def add(a, b):\n    return a + b\n" * 50,
        "a b c d e f g h i j " * 40,  # one-letter words: about 2 bytes per token
        "数据库迁移脚本" * 60,  # CJK: 3 bytes per character, often a token each
        "🙂🚀" * 40,  # emoji: 4 bytes, up to a few tokens each
        "1234567890" * 30,
    ],
)
def test_upper_bound_exceeds_the_worst_density_a_byte_level_bpe_can_have(text: str) -> None:
    # No byte-level BPE token is shorter than one byte; count as if every byte were a token.
    worst_possible = len(text.encode("utf-8"))
    messages = [Message("user", text)]
    assert prompt_tokens_upper_bound(messages) >= worst_possible
    # The estimate is smaller: fine for fitting context, not for budgets.
    assert estimate_prompt_tokens(messages) < prompt_tokens_upper_bound(messages)


def test_estimate_is_ceil_of_a_third_of_the_bytes() -> None:
    assert estimate_prompt_tokens([Message("user", "abcd")]) == (
        PER_REQUEST_OVERHEAD_TOKENS + PER_MESSAGE_OVERHEAD_TOKENS + 2
    )
