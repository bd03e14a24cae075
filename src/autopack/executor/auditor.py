"""The Auditor's prompt and the parsing of its verdict (ARCHITECTURE §5, step 7).

The reply must be one JSON object, optionally inside a single ```json fence. Nothing is guessed:
prose around the object, an unknown verdict or severity, a wrong type, a duplicated key, or a
verdict that contradicts its issues is an ``AuditorReplyError`` naming what is wrong, which the
executor records as the auditor call's failure.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autopack.errors import AutopackError
from autopack.executor.context import (
    MIN_HEAD_TOKENS,
    ContextBudgetError,
    ContextSection,
    MessageList,
    PhaseBrief,
    acceptance_section,
    fence,
    head_tail,
    task_section,
)
from autopack.executor.prompts import AUDITOR_SYSTEM_PROMPT
from autopack.executor.repomap import TokenEstimator, approximate_tokens

# The test summary is evidence, the diff is the subject: the summary may take this share at most.
TEST_SUMMARY_SHARE = 0.2

_FENCED = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL | re.I)


class Verdict(enum.StrEnum):
    APPROVE = "approve"
    REVISE = "revise"
    ESCALATE = "escalate"


class Severity(enum.StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class AuditorReplyError(AutopackError):
    """The Auditor's reply is not a valid verdict; ``reason`` says precisely why."""

    code = "auditor_reply_invalid"

    def __init__(self, reason: str, reply: str) -> None:
        super().__init__(
            f"invalid auditor reply: {reason}", details={"reason": reason, "reply": reply[:500]}
        )
        self.reason = reason


@dataclass(frozen=True)
class AuditorIssue:
    severity: Severity
    message: str
    path: str | None = None

    def render(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"[{self.severity}]{where} {self.message}"


@dataclass(frozen=True)
class AuditorVerdict:
    verdict: Verdict
    issues: tuple[AuditorIssue, ...] = ()
    summary: str = ""

    @property
    def approved(self) -> bool:
        return self.verdict is Verdict.APPROVE

    def issue_lines(self) -> list[str]:
        """One line per issue, most severe first: what a retry feeds back to the Builder."""
        order = list(Severity)
        ranked = sorted(self.issues, key=lambda issue: -order.index(issue.severity))
        return [issue.render() for issue in ranked]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as stored on the attempt."""
        return {
            "verdict": str(self.verdict),
            "issues": [
                {"severity": str(issue.severity), "path": issue.path, "message": issue.message}
                for issue in self.issues
            ],
            "summary": self.summary,
        }


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicated key {key!r}")
        result[key] = value
    return result


def _choice(value: Any, allowed: type[enum.StrEnum], where: str, reply: str) -> Any:
    names = ", ".join(repr(str(member)) for member in allowed)
    if not isinstance(value, str):
        raise AuditorReplyError(f"{where} must be a string, one of {names}", reply)
    try:
        return allowed(value)
    except ValueError:
        raise AuditorReplyError(f"{where} {value!r} is not one of {names}", reply) from None


def parse_auditor_verdict(text: str) -> AuditorVerdict:
    """The verdict in ``text``: a JSON object, bare or alone in a ```json fence."""
    body = text.strip()
    if not body:
        raise AuditorReplyError("the reply is empty", text)
    if body.startswith("```"):
        match = _FENCED.match(body)
        if match is None:
            raise AuditorReplyError(
                "a fenced reply must be one ```json block with nothing around it", text
            )
        body = match.group("body").strip()
    try:
        data = json.loads(body, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as exc:
        raise AuditorReplyError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", text
        ) from None
    except ValueError as exc:  # from _reject_duplicates
        raise AuditorReplyError(f"not valid JSON: {exc}", text) from None
    if not isinstance(data, dict):
        raise AuditorReplyError(f"expected a JSON object, got {type(data).__name__}", text)
    if "verdict" not in data:
        raise AuditorReplyError("the object has no `verdict`", text)
    verdict: Verdict = _choice(data["verdict"], Verdict, "`verdict`", text)

    raw_issues = data.get("issues", [])
    if not isinstance(raw_issues, list):
        raise AuditorReplyError("`issues` must be a list", text)
    issues = tuple(_parse_issue(item, position, text) for position, item in enumerate(raw_issues))

    summary = data.get("summary", "")
    if summary is None:
        summary = ""
    if not isinstance(summary, str):
        raise AuditorReplyError("`summary` must be a string", text)

    # A verdict at odds with its own issues cannot be acted on without guessing which one to trust.
    if verdict is Verdict.REVISE and not issues:
        raise AuditorReplyError("verdict 'revise' needs at least one issue to fix", text)
    if verdict is Verdict.APPROVE and any(issue.severity is not Severity.MINOR for issue in issues):
        raise AuditorReplyError("verdict 'approve' may only carry minor issues", text)
    return AuditorVerdict(verdict=verdict, issues=issues, summary=summary.strip())


def _parse_issue(item: Any, position: int, reply: str) -> AuditorIssue:
    where = f"issues[{position}]"
    if not isinstance(item, dict):
        raise AuditorReplyError(f"{where} must be an object", reply)
    if "severity" not in item:
        raise AuditorReplyError(f"{where} has no `severity`", reply)
    severity: Severity = _choice(item["severity"], Severity, f"{where}.severity", reply)
    message = item.get("message")
    if not isinstance(message, str) or not message.strip():
        raise AuditorReplyError(f"{where}.message must be a non-empty string", reply)
    path = item.get("path")
    if path is not None and not isinstance(path, str):
        raise AuditorReplyError(f"{where}.path must be a string or null", reply)
    return AuditorIssue(severity=severity, message=message.strip(), path=path or None)


# --- the request -------------------------------------------------------------------------------


def _diff_chunks(diff: str) -> list[tuple[str, str]]:
    """(file path, text) per file of a unified diff; a diff without file headers is one chunk."""
    lines = diff.splitlines(keepends=True)
    starts = [index for index, line in enumerate(lines) if line.startswith("diff --git ")]
    if not starts:
        starts = [
            index
            for index, line in enumerate(lines)
            if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1][:4] == "+++ "
        ]
    if not starts:
        return [("diff", diff)]
    if starts[0] != 0:
        starts.insert(0, 0)
    chunks = []
    for begin, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        text = "".join(lines[begin:end])
        chunks.append((_chunk_path(text), text))
    return chunks


def _chunk_path(chunk: str) -> str:
    for line in chunk.splitlines():
        if line.startswith("+++ ") and line[4:].strip() != "/dev/null":
            return line[4:].strip().removeprefix("b/")
        if line.startswith("--- ") and line[4:].strip() != "/dev/null":
            return line[4:].strip().removeprefix("a/")
    head = chunk.splitlines()[0] if chunk else ""
    return head.split(" b/")[-1] if head.startswith("diff --git ") else "diff"


def _fit_diff(diff: str, max_tokens: int, estimate: TokenEstimator) -> str:
    """Whole files of the diff in order while they fit, then head and tail of the next one, then
    the names of the files left out: a reviewer must know what it did not see."""
    chunks = _diff_chunks(diff)
    shown: list[str] = []
    left: list[str] = []

    def render(parts: Sequence[str], omitted: Sequence[str]) -> str:
        block = fence("".join(parts), "diff")
        if omitted:
            block += f"\n[not shown for lack of room: {', '.join(omitted)}]"
        return block

    # Costs are summed per file (re-measuring the growing text would be quadratic); the caller
    # measures the whole message once and asks again with less room if the sum was optimistic.
    used = estimate(render([], []))
    for position, (path, text) in enumerate(chunks):
        rest = [name for name, _ in chunks[position + 1 :]]
        note = estimate(render([], [f"{path} (cut)", *rest])) if rest else 0
        cost = estimate(text)
        if used + cost + note <= max_tokens:
            shown.append(text)
            used += cost
            continue
        room = max_tokens - used - estimate(render([], [f"{path} (cut)", *rest]))
        cut = head_tail(text, room, estimate) if room >= MIN_HEAD_TOKENS else ""
        if cut:
            shown.append(cut if cut.endswith("\n") else cut + "\n")
            left = [f"{path} (cut)", *rest]
        else:
            left = [path, *rest]
        break
    return render(shown, left)


def build_auditor_messages(
    phase: PhaseBrief,
    diff: str,
    test_summary: str,
    budget: int,
    *,
    estimate: TokenEstimator = approximate_tokens,
) -> MessageList:
    """System and user messages asking the Auditor for a verdict on ``diff``.

    ``budget`` covers the user message; the test summary is cut to a share of it and the diff
    gets the rest, file by file. Raises ``ContextBudgetError`` when not even the task fits.
    """
    if budget <= 0:
        raise ContextBudgetError(f"auditor budget must be positive, got {budget}")
    sections = [task_section(phase, budget, estimate)]
    if (criteria := acceptance_section(phase)) is not None:
        sections.append(criteria)
    summary = test_summary.strip() or "(no test output)"
    summary = head_tail(summary, int(budget * TEST_SUMMARY_SHARE), estimate)
    sections.append(ContextSection("tests", "Test results", fence(summary)))
    ask = ContextSection("reply", "Your reply", "The JSON verdict object only.")
    fixed = "\n\n".join(section.render() for section in [*sections, ask])
    room = budget - estimate(fixed + "\n\n## Diff\n\n")
    while room >= MIN_HEAD_TOKENS:
        diff_text = _fit_diff(diff, room, estimate) if diff.strip() else "(the change is empty)"
        body = [*sections, ContextSection("diff", "Diff", diff_text), ask]
        user = "\n\n".join(section.render() for section in body)
        overflow = estimate(user) - budget
        if overflow <= 0:
            return [("system", AUDITOR_SYSTEM_PROMPT), ("user", user)]
        # The per-file sum was optimistic (tokenizers are not additive): retry with less room.
        room -= max(overflow, room // 10)
    raise ContextBudgetError(
        f"auditor budget of {budget} tokens leaves no room for the diff",
        details={"budget": budget},
    )
