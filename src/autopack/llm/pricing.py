"""Model specs, exact costs, and token bounds for prompts.

Money is ``Decimal`` end to end: prices are USD per million tokens, a cost is an exact product, and
``quantize_usd`` rounds UP to the micro-dollar (the ledger's ``Numeric(14, 6)``), so that what is
charged is never less than what was spent and a worst case rounded the same way still bounds it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from autopack.llm.provider import Completion, Message

MILLION = Decimal(1_000_000)
MICRO_USD = Decimal("0.000001")

Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]

# Token accounting for prompts without a tokenizer. Every tokenizer our providers use is a
# byte-level BPE (or falls back to bytes for text outside its vocabulary): a token always stands
# for at least one byte of UTF-8 text, so a text of N bytes is at most N tokens. On top of the text
# each message costs a few tokens of role and separator markup, and the request a few more to
# frame the conversation; the overheads below are several times what the providers document.
PER_MESSAGE_OVERHEAD_TOKENS = 16
PER_REQUEST_OVERHEAD_TOKENS = 32
# Typical density of English prose and source code in those tokenizers is 3.5 to 4.5 bytes per
# token; 3 errs on the large side for ordinary text. It is an estimate, not a bound (see
# `estimate_prompt_tokens`).
TYPICAL_BYTES_PER_TOKEN = 3


class ModelSpec(BaseModel):
    """One model of the routing file: who serves it, what it costs, how much it takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["anthropic", "openai"] = Field(
        description="Wire format and adapter that serve the model"
    )
    input_usd_per_mtok: Price = Field(description="USD per million uncached input tokens")
    output_usd_per_mtok: Price = Field(description="USD per million output tokens")
    cache_read_usd_per_mtok: Price | None = Field(
        default=None, description="USD per million prompt tokens read from cache (input price)"
    )
    cache_write_usd_per_mtok: Price | None = Field(
        default=None, description="USD per million prompt tokens written to cache (input price)"
    )
    context_window: int = Field(gt=0, description="Most tokens of prompt plus output")
    max_output_tokens: int = Field(gt=0, description="Most output tokens in one reply")

    @property
    def cache_read_price(self) -> Decimal:
        # Undeclared cache prices fall back to the full input price: never cheaper than the truth
        # for reads, and equal to it for providers without cache-write surcharges.
        return (
            self.input_usd_per_mtok
            if self.cache_read_usd_per_mtok is None
            else self.cache_read_usd_per_mtok
        )

    @property
    def cache_write_price(self) -> Decimal:
        return (
            self.input_usd_per_mtok
            if self.cache_write_usd_per_mtok is None
            else self.cache_write_usd_per_mtok
        )


def cost_usd(
    spec: ModelSpec,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """The exact cost of a call (not rounded). Token kinds as in ``Completion``."""
    for name, value in (
        ("input_tokens", input_tokens),
        ("output_tokens", output_tokens),
        ("cache_read_tokens", cache_read_tokens),
        ("cache_write_tokens", cache_write_tokens),
    ):
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    total = (
        input_tokens * spec.input_usd_per_mtok
        + output_tokens * spec.output_usd_per_mtok
        + cache_read_tokens * spec.cache_read_price
        + cache_write_tokens * spec.cache_write_price
    )
    # Dividing by 10**6 only moves the decimal point: exact at any precision the products fit in.
    return total / MILLION


def completion_cost(spec: ModelSpec, completion: Completion) -> Decimal:
    """What a completed call is charged: its exact cost rounded up to the micro-dollar."""
    return quantize_usd(
        cost_usd(
            spec,
            completion.input_tokens,
            completion.output_tokens,
            completion.cache_read_tokens,
            completion.cache_write_tokens,
        )
    )


def worst_case_cost(
    spec: ModelSpec,
    prompt_tokens: int,
    max_tokens: int,
    *,
    cache_writes_possible: bool = False,
) -> Decimal:
    """The most a call can cost, rounded up to the micro-dollar.

    Every prompt token is priced at the dearest way it could be billed (input, cache read, and
    cache write only when the request asks for caching, as only then can the provider write the
    cache), and the reply at its full ``max_tokens``.
    """
    if prompt_tokens < 0 or max_tokens < 0:
        raise ValueError("token counts must not be negative")
    prompt_price = max(spec.input_usd_per_mtok, spec.cache_read_price)
    if cache_writes_possible:
        prompt_price = max(prompt_price, spec.cache_write_price)
    exact = (prompt_tokens * prompt_price + max_tokens * spec.output_usd_per_mtok) / MILLION
    return quantize_usd(exact)


def quantize_usd(amount: Decimal) -> Decimal:
    """Round UP to whole micro-dollars (6 places), the ledger's precision."""
    return amount.quantize(MICRO_USD, rounding=ROUND_CEILING)


def floor_usd(amount: Decimal) -> Decimal:
    """Round DOWN to whole micro-dollars: what may still be spent out of a remainder."""
    return amount.quantize(MICRO_USD, rounding=ROUND_FLOOR)


def prompt_tokens_upper_bound(messages: Iterable[Message]) -> int:
    """A guaranteed upper bound of the prompt's tokens, without a tokenizer: one token per UTF-8
    byte of content, plus generous per-message and per-request framing.

    Why it is a bound: the tokenizers in use (Anthropic's and OpenAI's ``cl100k``/``o200k``) are
    byte-level BPEs, whose every token encodes at least one byte, so no text of N bytes takes more
    than N tokens. Real prompts take 3 to 4 times fewer; the budget check uses this anyway, since
    the guarantee that a run never exceeds its cap holds only if the reservation is a true bound.
    """
    total = PER_REQUEST_OVERHEAD_TOKENS
    for message in messages:
        total += PER_MESSAGE_OVERHEAD_TOKENS + len(message.content.encode("utf-8"))
    return total


def estimate_prompt_tokens(messages: Iterable[Message]) -> int:
    """A generous estimate of the prompt's tokens, for fitting context into a window:
    ``ceil(utf8 bytes / 3)`` plus the same framing as the bound.

    It exceeds the true count for ordinary English and source code (3.5 to 4.5 bytes per token),
    but it is NOT a guarantee: text that tokenizes densely (CJK, emoji, long runs of digits or of
    one-letter words) can take more tokens than this. Budget checks use
    ``prompt_tokens_upper_bound``.
    """
    total = PER_REQUEST_OVERHEAD_TOKENS
    for message in messages:
        size = len(message.content.encode("utf-8"))
        total += PER_MESSAGE_OVERHEAD_TOKENS + math.ceil(size / TYPICAL_BYTES_PER_TOKEN)
    return total
