"""Routing: which model serves which call, when to escalate, when to audit, and the price table.

The routing file is YAML (the default ships as ``routing.default.yaml`` in this package; a user's
file replaces it whole, nothing is merged). Its schema, every key and the selection rules are
documented in ``docs/models.md``. Every problem in a file is reported with its path
(``roles.builder.medium[1]: unknown model 'x'``), all at once.

Selection, for a role (builder, auditor, planner) and a phase's complexity and task category:

1. the chain: a per-run override for the role, else the category's chain for the role and
   complexity, else the role's chain for the complexity;
2. the step: ``failures // escalation.after_failures``, held at the last model of the chain;
3. ``max_tokens``: ``limits.max_tokens[role]``, lowered to the model's ``max_output_tokens``.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from autopack import documents
from autopack.documents import load_yaml
from autopack.errors import ConfigurationError
from autopack.llm.pricing import ModelSpec

Role = Literal["builder", "auditor", "planner"]
ROLES: tuple[Role, ...] = get_args(Role)
Complexity = Literal["low", "medium", "high"]
COMPLEXITIES: tuple[Complexity, ...] = get_args(Complexity)
AuditMode = Literal["always", "never", "auto"]

DEFAULT_ROUTING_RESOURCE = "routing.default.yaml"
# Shipped routing files, chosen by AUTOPACK_ROUTING_PROFILE when no routing file is given:
# Anthropic models (one key), OpenAI models (one key), a local OpenAI-compatible server (no key).
ROUTING_PROFILES = ("default", "openai", "local")
# The categories the auditor reviews by default: changes whose mistakes are costly or silent.
DEFAULT_HIGH_RISK_CATEGORIES = (
    "security",
    "auth",
    "authentication",
    "authorization",
    "permissions",
    "secrets",
    "cryptography",
    "migration",
    "database_migration",
    "schema_migration",
    "payments",
    "billing",
    "data_deletion",
    "infrastructure",
    "deployment",
)

_HIGH_ONLY: list[Complexity] = ["high"]

ModelName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$", max_length=128)
]
# Category keys are written normalised (lowercase, underscores), the form `normalize_category`
# gives a plan's free-text task_category, so that "Database Migration" finds `database_migration`.
CategoryName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.]*$", max_length=80)]
Chain = Annotated[list[ModelName], Field(min_length=1)]


class RoutingError(ConfigurationError):
    """A routing file or a per-run override that cannot be used; ``details`` lists every problem
    as ``{"loc": "roles.builder.low[0]", "message": ...}``."""

    code = "routing_invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComplexityChains(_Strict):
    low: Chain
    medium: Chain
    high: Chain

    def get(self, complexity: str) -> list[str]:
        chain: list[str] = getattr(self, complexity)
        return chain


class PartialComplexityChains(_Strict):
    """A category's chains for a role; a complexity left out falls back to the role's chain."""

    low: Chain | None = None
    medium: Chain | None = None
    high: Chain | None = None

    def get(self, complexity: str) -> list[str] | None:
        chain: list[str] | None = getattr(self, complexity)
        return chain


class RoleChains(_Strict):
    builder: ComplexityChains
    auditor: ComplexityChains
    planner: ComplexityChains


class CategoryRouting(_Strict):
    builder: PartialComplexityChains | None = None
    auditor: PartialComplexityChains | None = None
    audit: AuditMode = Field(
        default="auto",
        description="always / never audit this category, or auto: the `auditor` triggers decide",
    )


class Escalation(_Strict):
    after_failures: int = Field(
        default=2, ge=1, description="Consecutive failed attempts per step along a chain"
    )


class AuditorTriggers(_Strict):
    categories: list[CategoryName] = Field(default_factory=lambda: [*DEFAULT_HIGH_RISK_CATEGORIES])
    complexities: list[Complexity] = Field(default_factory=lambda: _HIGH_ONLY.copy())
    after_failures: int | None = Field(
        default=2, ge=1, description="Audit once this many consecutive attempts failed; null: never"
    )


class MaxTokens(_Strict):
    builder: int = Field(default=8192, gt=0)
    auditor: int = Field(default=2048, gt=0)
    planner: int = Field(default=4096, gt=0)


class Limits(_Strict):
    max_tokens: MaxTokens = Field(default_factory=MaxTokens)


class RoutingConfig(_Strict):
    models: dict[ModelName, ModelSpec] = Field(min_length=1)
    roles: RoleChains
    categories: dict[CategoryName, CategoryRouting] = Field(default_factory=dict)
    escalation: Escalation = Field(default_factory=Escalation)
    auditor: AuditorTriggers = Field(default_factory=AuditorTriggers)
    limits: Limits = Field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The routed model for one call. ``source`` says where the chain came from: ``override``,
    ``category:<name>`` or ``role`` (for events and the attempt's audit trail)."""

    model: str
    provider: str
    spec: ModelSpec
    max_tokens: int
    step_in_chain: int
    chain: tuple[str, ...]
    source: str


def normalize_category(category: str) -> str:
    """A plan's task_category as routing keys are written: lowercase, runs of spaces and hyphens
    as one underscore (``"Database Migration"`` -> ``database_migration``)."""
    return re.sub(r"[\s\-]+", "_", category.strip().lower())


class Router:
    """Answers routing questions from one validated RoutingConfig."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config

    def spec(self, model: str) -> ModelSpec:
        try:
            return self.config.models[model]
        except KeyError:
            raise RoutingError(
                f"unknown model {model!r}; the routing file declares {sorted(self.config.models)}"
            ) from None

    def chain(
        self,
        role: str,
        complexity: str,
        category: str | None = None,
        overrides: Mapping[str, str | Sequence[str]] | None = None,
    ) -> tuple[tuple[str, ...], str]:
        """The model chain for a call and where it came from (see ``ModelChoice.source``)."""
        _check_choice("role", role, ROLES)
        _check_choice("complexity", complexity, COMPLEXITIES)
        parsed = self.parse_overrides(overrides)
        if role in parsed:
            return parsed[role], "override"
        if category:
            key = normalize_category(category)
            routing = self.config.categories.get(key)
            chains = getattr(routing, role, None) if routing is not None else None
            if isinstance(chains, PartialComplexityChains):
                chain = chains.get(complexity)
                if chain is not None:
                    return tuple(chain), f"category:{key}"
        return tuple(getattr(self.config.roles, role).get(complexity)), "role"

    def select(
        self,
        role: str,
        complexity: str,
        category: str | None = None,
        failures: int = 0,
        overrides: Mapping[str, str | Sequence[str]] | None = None,
    ) -> ModelChoice:
        """The model for a call. ``failures`` is the number of consecutive failed attempts of the
        phase so far; every ``escalation.after_failures`` of them move one step along the chain,
        and the last model of the chain serves every attempt after that."""
        if failures < 0:
            raise RoutingError(f"failures must not be negative, got {failures}")
        chain, source = self.chain(role, complexity, category, overrides)
        step = min(failures // self.config.escalation.after_failures, len(chain) - 1)
        model = chain[step]
        spec = self.spec(model)
        limit: int = getattr(self.config.limits.max_tokens, role)
        return ModelChoice(
            model=model,
            provider=spec.provider,
            spec=spec,
            max_tokens=min(limit, spec.max_output_tokens),
            step_in_chain=step,
            chain=chain,
            source=source,
        )

    def needs_audit(
        self, category: str | None, complexity: str, failures: int = 0
    ) -> tuple[bool, str]:
        """Whether the auditor reviews this attempt, and why (a sentence for events and docs).

        The category's ``audit`` decides when it is ``always`` or ``never``; otherwise (``auto``,
        or a category the file does not list) any ``auditor`` trigger does: a high-risk category,
        a listed complexity, or ``auditor.after_failures`` consecutive failures.
        """
        _check_choice("complexity", complexity, COMPLEXITIES)
        key = normalize_category(category) if category else None
        routing = self.config.categories.get(key) if key else None
        if routing is not None and routing.audit == "always":
            return True, f"category {key!r} is always audited (categories.{key}.audit: always)"
        if routing is not None and routing.audit == "never":
            return False, f"category {key!r} is never audited (categories.{key}.audit: never)"
        triggers = self.config.auditor
        if key is not None and key in triggers.categories:
            return True, f"category {key!r} is high-risk (auditor.categories)"
        if complexity in triggers.complexities:
            return True, f"complexity {complexity!r} is always audited (auditor.complexities)"
        if triggers.after_failures is not None and failures >= triggers.after_failures:
            return True, (
                f"{failures} consecutive failed attempts (auditor.after_failures: "
                f"{triggers.after_failures})"
            )
        return False, "no auditor trigger applies (category, complexity and failures)"

    def parse_overrides(
        self, overrides: Mapping[str, object] | None, *, path: str = "models"
    ) -> dict[str, tuple[str, ...]]:
        """Check per-run overrides (``{role: model}`` or ``{role: [model, ...]}``, as a plan's
        ``models:`` would give them); every problem is reported with its path under ``path``."""
        if not overrides:
            return {}
        problems: list[dict[str, str]] = []
        parsed: dict[str, tuple[str, ...]] = {}
        for role, value in overrides.items():
            where = f"{path}.{role}"
            if role not in ROLES:
                problems.append(
                    {"loc": where, "message": f"unknown role; expected one of {list(ROLES)}"}
                )
                continue
            chain: list[object]
            if isinstance(value, str):
                chain = [value]
            elif isinstance(value, list | tuple) and value:
                chain = list(value)
            else:
                problems.append(
                    {"loc": where, "message": "expected a model name or a non-empty list of them"}
                )
                continue
            for position, model in enumerate(chain):
                at = where if isinstance(value, str) else f"{where}[{position}]"
                if not isinstance(model, str) or model not in self.config.models:
                    problems.append({"loc": at, "message": self._unknown_model(model)})
            parsed[role] = tuple(str(model) for model in chain)
        if problems:
            raise _routing_error("invalid model overrides", problems)
        return parsed

    def reachable_models(
        self,
        phases: Iterable[tuple[str | None, str]],
        overrides: Mapping[str, str | Sequence[str]] | None = None,
        roles: Iterable[str] = ("builder", "auditor"),
    ) -> set[str]:
        """Every model a run could call for phases given as ``(category, complexity)``: what must
        have a usable provider (and key) before the run starts."""
        models: set[str] = set()
        for category, complexity in phases:
            for role in roles:
                models.update(self.chain(role, complexity, category, overrides)[0])
        return models

    def _unknown_model(self, model: object) -> str:
        return f"unknown model {model!r}; declared models are {sorted(self.config.models)}"


# --- loading ---------------------------------------------------------------------------------


def default_routing_text(profile: str = "default") -> str:
    """A shipped routing file (``routing.<profile>.yaml``), read from the installed package."""
    _check_choice("routing profile", profile, ROUTING_PROFILES)
    resource = importlib.resources.files("autopack.llm").joinpath(f"routing.{profile}.yaml")
    return resource.read_text(encoding="utf-8")


def load_routing(path: Path | str | None = None, *, profile: str = "default") -> RoutingConfig:
    """Load a routing file, or the shipped file of ``profile`` when ``path`` is None."""
    if path is None:
        return parse_routing(
            default_routing_text(profile), source=f"(shipped routing.{profile}.yaml)"
        )
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RoutingError(f"routing file {path} cannot be read: {reason}") from exc
    return parse_routing(text, source=str(path))


def parse_routing(text: str, *, source: str = "(routing)") -> RoutingConfig:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise RoutingError(f"routing file {source} is not valid YAML: {problem}{where}") from None
    return validate_routing(data, source=source)


def validate_routing(data: Any, *, source: str = "(routing)") -> RoutingConfig:
    """Validate parsed YAML/JSON data, reporting every problem with its path."""
    if not isinstance(data, dict):
        raise _routing_error(
            f"invalid routing file {source}",
            [{"loc": "(routing)", "message": "expected a mapping with `models` and `roles`"}],
        )
    try:
        config = RoutingConfig.model_validate(data)
    except ValidationError as exc:
        problems = [{"loc": format_loc(err["loc"]), "message": err["msg"]} for err in exc.errors()]
        raise _routing_error(f"invalid routing file {source}", problems) from None
    problems = _check_references(config)
    if problems:
        raise _routing_error(f"invalid routing file {source}", problems)
    return config


def format_loc(loc: Sequence[int | str]) -> str:
    """``("roles", "builder", "low", 0)`` -> ``roles.builder.low[0]``."""
    return documents.format_loc(loc, "(routing)")


def _check_references(config: RoutingConfig) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    declared = sorted(config.models)

    def check_chain(chain: list[str] | None, where: str) -> None:
        for position, model in enumerate(chain or []):
            if model not in config.models:
                problems.append(
                    {
                        "loc": f"{where}[{position}]",
                        "message": f"unknown model {model!r}; declared models are {declared}",
                    }
                )

    for name, spec in config.models.items():
        if spec.max_output_tokens > spec.context_window:
            problems.append(
                {
                    "loc": f"models.{name}.max_output_tokens",
                    "message": f"{spec.max_output_tokens} exceeds the context_window "
                    f"{spec.context_window}",
                }
            )
    for role in ROLES:
        chains: ComplexityChains = getattr(config.roles, role)
        for complexity in COMPLEXITIES:
            check_chain(chains.get(complexity), f"roles.{role}.{complexity}")
    for category, routing in config.categories.items():
        for role in ("builder", "auditor"):
            partial: PartialComplexityChains | None = getattr(routing, role)
            if partial is None:
                continue
            for complexity in COMPLEXITIES:
                check_chain(partial.get(complexity), f"categories.{category}.{role}.{complexity}")
    return problems


def _routing_error(summary: str, problems: list[dict[str, str]]) -> RoutingError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return RoutingError(f"{summary}: {first['loc']}: {first['message']}{more}", details=problems)


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RoutingError(f"unknown {what} {value!r}; expected one of {list(allowed)}")
