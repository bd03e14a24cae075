"""Turning plan text (JSON or YAML) into a validated Plan, with every error located by its path.

``PlanValidationError.details`` is a list of ``{"loc": "phases[1].tier_id", "message": ...}``;
the API returns it as the error's details and ``autopack plan validate`` prints one per line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from autopack import documents
from autopack.documents import load_yaml
from autopack.errors import InvalidInputError
from autopack.plans.models import Plan


class MalformedPlanError(InvalidInputError):
    """The text is not valid JSON or YAML at all."""

    code = "malformed_input"


class PlanValidationError(InvalidInputError):
    """The document parsed but is not a valid plan."""

    code = "invalid_plan"


def format_loc(loc: Sequence[int | str]) -> str:
    """``("phases", 0, "tier_id")`` -> ``"phases[0].tier_id"``."""
    return documents.format_loc(loc, "(plan)")


def parse_plan_text(text: str | bytes, *, fmt: str | None = None) -> Any:
    """Parse JSON or YAML (``fmt`` "json"/"yaml", or guessed: JSON when it starts with ``{``).

    Duplicate keys are errors, not last-one-wins.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPlanError(f"the plan is not UTF-8 text (byte {exc.start})") from exc
    if fmt is None:
        fmt = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
    if not text.strip():
        raise MalformedPlanError("the plan is empty")
    if fmt == "json":
        try:
            return json.loads(text, object_pairs_hook=_no_duplicate_keys_json)
        except json.JSONDecodeError as exc:
            raise MalformedPlanError(
                f"the plan is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                details=[{"loc": f"line {exc.lineno}, column {exc.colno}", "message": exc.msg}],
            ) from exc
        except _DuplicateKeyError as exc:
            raise MalformedPlanError(f"the plan is not valid JSON: {exc}") from exc
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise MalformedPlanError(f"the plan is not valid YAML: {problem}{where}") from exc


def validate_plan(data: Any) -> Plan:
    """Validate parsed data into a Plan, raising PlanValidationError listing every problem."""
    if not isinstance(data, dict):
        raise PlanValidationError(
            "the plan must be a mapping with `run`, `tiers` and `phases`",
            details=[
                {"loc": "(plan)", "message": f"expected a mapping, got {type(data).__name__}"}
            ],
        )
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        problems = [{"loc": format_loc(err["loc"]), "message": err["msg"]} for err in exc.errors()]
        raise _plan_error(problems) from None
    problems = _check_references(plan)
    if problems:
        raise _plan_error(problems)
    return normalise(plan)


def load_plan(text: str | bytes, *, fmt: str | None = None) -> Plan:
    return validate_plan(parse_plan_text(text, fmt=fmt))


def normalise(plan: Plan) -> Plan:
    """Fill omitted indexes from list positions and order tiers and phases for execution."""
    tiers = [
        tier if tier.tier_index is not None else tier.model_copy(update={"tier_index": position})
        for position, tier in enumerate(plan.tiers)
    ]
    tiers.sort(key=lambda tier: tier.tier_index or 0)
    tier_order = {tier.tier_id: position for position, tier in enumerate(tiers)}
    phases = [
        phase
        if phase.phase_index is not None
        else phase.model_copy(update={"phase_index": position})
        for position, phase in enumerate(plan.phases)
    ]
    phases.sort(key=lambda phase: (tier_order[phase.tier_id], phase.phase_index or 0))
    return plan.model_copy(update={"tiers": tiers, "phases": phases})


def _check_references(plan: Plan) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []

    def duplicates(values: list[Any], path: str, what: str) -> None:
        first_at: dict[Any, int] = {}
        for position, value in enumerate(values):
            if value is None:
                continue
            if value in first_at:
                problems.append(
                    {
                        "loc": path.format(position),
                        "message": f"duplicate {what} {value!r} (first at "
                        f"{path.format(first_at[value]).rsplit('.', 1)[0]})",
                    }
                )
            else:
                first_at[value] = position

    duplicates([t.tier_id for t in plan.tiers], "tiers[{}].tier_id", "tier_id")
    duplicates([t.tier_index for t in plan.tiers], "tiers[{}].tier_index", "tier_index")
    duplicates([p.phase_id for p in plan.phases], "phases[{}].phase_id", "phase_id")
    duplicates(
        [(p.tier_id, p.phase_index) if p.phase_index is not None else None for p in plan.phases],
        "phases[{}].phase_index",
        "(tier_id, phase_index)",
    )
    tier_ids = {tier.tier_id for tier in plan.tiers}
    for position, phase in enumerate(plan.phases):
        if phase.tier_id not in tier_ids:
            problems.append(
                {
                    "loc": f"phases[{position}].tier_id",
                    "message": f"unknown tier {phase.tier_id!r}; the plan's tiers are "
                    f"{sorted(tier_ids)}",
                }
            )
    used = {phase.tier_id for phase in plan.phases}
    for position, tier in enumerate(plan.tiers):
        if tier.tier_id not in used:
            problems.append(
                {"loc": f"tiers[{position}]", "message": f"tier {tier.tier_id!r} has no phases"}
            )
    if plan.run.max_phases is not None and len(plan.phases) > plan.run.max_phases:
        problems.append(
            {
                "loc": "run.max_phases",
                "message": f"the plan has {len(plan.phases)} phases but max_phases is "
                f"{plan.run.max_phases}",
            }
        )
    return problems


def _plan_error(problems: list[dict[str, str]]) -> PlanValidationError:
    count = len(problems)
    first = problems[0]
    summary = f"{first['loc']}: {first['message']}"
    more = f" (and {count - 1} more)" if count > 1 else ""
    return PlanValidationError(f"invalid plan: {summary}{more}", details=problems)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicate_keys_json(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result
