"""Regenerates the demo's cassette: ``python -m autopack.demo.record``.

It runs the demo plan against a fresh copy of the demo project with a scripted provider that
answers each call with the next reply of ``replies/`` (in file name order), and records every
request with its reply, in the Anthropic Messages wire format, to ``cassette.jsonl``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from autopack.demo import CASSETTE_FILE, REPLIES_DIR
from autopack.llm.pricing import prompt_tokens_upper_bound
from autopack.llm.provider import CallContext, Completion, CompletionRequest
from autopack.llm.replay import CassetteWriter
from autopack.llm.wire import build_response, parse_response


class ScriptedProvider:
    """Answers calls with prepared replies, in order, and records each exchange."""

    name = "anthropic"

    def __init__(self, replies: list[Path], writer: CassetteWriter) -> None:
        self.replies = list(replies)
        self.writer = writer
        self.served: list[str] = []

    def complete(self, request: CompletionRequest, *, context: CallContext) -> Completion:
        if not self.replies:
            raise RuntimeError(f"the script has no reply left for {context.describe()}")
        reply = self.replies.pop(0)
        text = reply.read_text(encoding="utf-8")
        body = build_response(
            "anthropic",
            text,
            model=request.model,
            # Plausible usage: the demo shows tokens and cost, so they should look like a run's.
            input_tokens=max(1, prompt_tokens_upper_bound(request.messages) * 3 // 4),
            output_tokens=max(1, len(text.encode("utf-8")) // 4),
        )
        self.writer.append(request, body, provider="anthropic", note=reply.name)
        self.served.append(f"{context.describe()} <- {reply.name}")
        return parse_response("anthropic", body)


def record(cassette: Path = CASSETTE_FILE) -> list[str]:
    from autopack.demo.run import run_demo

    replies = sorted(REPLIES_DIR.glob("*.md"))
    provider = ScriptedProvider(replies, CassetteWriter(cassette, mode="overwrite"))
    with tempfile.TemporaryDirectory(prefix="autopack-demo-record-") as tmp:
        outcome = run_demo(Path(tmp), provider=provider, quiet=True)
    if provider.replies:
        raise RuntimeError(f"replies left unused: {[p.name for p in provider.replies]}")
    if outcome != "DONE_SUCCESS":
        raise RuntimeError(f"the scripted demo ended {outcome}, not DONE_SUCCESS")
    return provider.served


if __name__ == "__main__":
    for line in record():
        print(line)
