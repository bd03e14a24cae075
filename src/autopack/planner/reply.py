"""Reading the planner's reply: the YAML it holds, validated as a plan, plus the checks that need
the request's context (the project, the routing file, the repository's files).

Every problem is a ``{"loc", "message"}`` like the plan validator's, so that the repair round and
the final rejection show them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from autopack.documents import load_yaml
from autopack.executor.context import scope_matches
from autopack.llm.routing import Router, RoutingError
from autopack.plans.loader import PlanValidationError, validate_plan
from autopack.plans.models import Plan

REPLY_LOC = "(reply)"

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*?)[ \t]*$")
_YAML_TAGS = frozenset({"yaml", "yml"})


class ReplyInvalid(Exception):  # noqa: N818 - an outcome of checking, not a program error
    """The reply does not hold a valid plan; ``problems`` lists why, each with a location."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@dataclass(frozen=True)
class ReplyContext:
    """What a plan is checked against besides its own rules."""

    files: Collection[str]
    router: Router
    project: str | None = None


@dataclass(frozen=True)
class _Block:
    info: str
    text: str


def extract_yaml(reply: str) -> str:
    """The plan text of a reply: its one fenced ``yaml`` block, else its one fenced block of any
    kind, else the whole reply. Several candidate blocks are ambiguous: ReplyInvalid.

    An unclosed fence runs to the end of the reply (a reply cut short is caught separately)."""
    blocks = _fenced_blocks(reply)
    tagged = [block for block in blocks if block.info.split(" ")[0].lower() in _YAML_TAGS]
    candidates = tagged or blocks
    if len(candidates) > 1:
        kind = "```yaml blocks" if tagged else "fenced blocks"
        raise ReplyInvalid(
            [
                {
                    "loc": REPLY_LOC,
                    "message": f"the reply holds {len(candidates)} {kind}; send the whole plan "
                    "in exactly one",
                }
            ]
        )
    return candidates[0].text if candidates else reply


def check_reply(reply: str, context: ReplyContext, *, cut_off_at: int | None = None) -> str:
    """The reply's plan text, when it is a valid plan for ``context``; else ReplyInvalid.

    ``cut_off_at``: the reply stopped at this ``max_tokens`` limit, so it is incomplete even if
    what arrived happens to parse.
    """
    if cut_off_at is not None:
        raise ReplyInvalid(
            [
                {
                    "loc": REPLY_LOC,
                    "message": f"the reply was cut off at the limit of {cut_off_at} output "
                    "tokens: write a shorter plan (fewer phases, shorter descriptions)",
                }
            ]
        )
    text = extract_yaml(reply)
    plan = parse_reply_plan(text)
    problems = context_problems(plan, context)
    if problems:
        raise ReplyInvalid(problems)
    return text


def parse_reply_plan(text: str) -> Plan:
    """Parse and validate plan text, turning every failure into located problems."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ReplyInvalid([_yaml_problem(exc)]) from None
    if data is None:
        raise ReplyInvalid(
            [{"loc": REPLY_LOC, "message": "the reply holds no plan (no YAML document found)"}]
        )
    try:
        return _validated(data)
    except PlanValidationError as exc:
        problems = exc.details if isinstance(exc.details, list) else []
        raise ReplyInvalid(problems or [{"loc": "(plan)", "message": exc.message}]) from None


def context_problems(plan: Plan, context: ReplyContext) -> list[dict[str, str]]:
    """What makes a valid plan wrong for this request."""
    problems = _project_problems(plan, context.project)
    try:
        context.router.parse_overrides(plan.run.models, path="run.models")
    except RoutingError as exc:
        problems.extend(exc.details if isinstance(exc.details, list) else [])
    problems.extend(_context_path_problems(plan, context.files))
    return problems


def _validated(data: Any) -> Plan:
    # Kept as written (not normalised) so that locations point at the reply's own list positions.
    validate_plan(data)
    return Plan.model_validate(data)


def _project_problems(plan: Plan, project: str | None) -> list[dict[str, str]]:
    if project is None and plan.project is not None:
        message = "leave `project` out: the run's project is chosen when it is created"
        return [{"loc": "project", "message": message}]
    if project is not None and plan.project != project:
        found = "missing" if plan.project is None else f"{plan.project!r}"
        message = f"must be {project!r}, the project this plan is for (found {found})"
        return [{"loc": "project", "message": message}]
    return []


def _context_path_problems(plan: Plan, files: Collection[str]) -> list[dict[str, str]]:
    """Read-only context must exist: in the repository, or written by an earlier phase."""
    problems: list[dict[str, str]] = []
    # The order `normalise` executes them in: indexes where given, else list positions.
    tier_key = {
        tier.tier_id: tier.tier_index if tier.tier_index is not None else position
        for position, tier in enumerate(plan.tiers)
    }
    order = sorted(
        range(len(plan.phases)),
        key=lambda i: (
            tier_key[plan.phases[i].tier_id],
            plan.phases[i].phase_index if plan.phases[i].phase_index is not None else i,
        ),
    )
    written: list[str] = []
    for position in order:
        phase = plan.phases[position]
        for item, entry in enumerate(phase.scope.read_only_context):
            if not _exists(entry, files, written):
                problems.append(
                    {
                        "loc": f"phases[{position}].scope.read_only_context[{item}]",
                        "message": f"{entry!r} is not in the repository and no earlier phase "
                        "writes it; list only existing files (or move it to scope.paths)",
                    }
                )
        written.extend(phase.scope.paths)
    problems.sort(key=lambda problem: problem["loc"])
    return problems


def _exists(entry: str, files: Collection[str], written: Sequence[str]) -> bool:
    if any(scope_matches(entry, path) for path in files):
        return True
    return any(earlier == entry or scope_matches(earlier, entry) for earlier in written)


def _yaml_problem(exc: yaml.YAMLError) -> dict[str, str]:
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return {"loc": REPLY_LOC, "message": f"not valid YAML: {problem}"}
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return {"loc": where, "message": f"not valid YAML: {problem}"}


def _fenced_blocks(text: str) -> list[_Block]:
    """CommonMark-style fenced blocks: a closing fence uses the opening's character, at least as
    many times, and nothing else on its line."""
    blocks: list[_Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            continue
        fence = opening["fence"]
        body: list[str] = []
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            body.append(line)
        blocks.append(_Block(info=opening["info"].strip(), text="\n".join(body) + "\n"))
    return blocks
