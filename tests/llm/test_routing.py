"""Routing files: validation with paths, selection, escalation, overrides, auditor triggers."""

from __future__ import annotations

import copy
import importlib.resources
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from autopack.llm.pricing import ModelSpec
from autopack.llm.routing import (
    DEFAULT_HIGH_RISK_CATEGORIES,
    AuditorTriggers,
    CategoryRouting,
    Limits,
    Router,
    RoutingConfig,
    RoutingError,
    default_routing_text,
    load_routing,
    normalize_category,
    parse_routing,
    validate_routing,
)


def _model(provider: str = "anthropic", **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "input_usd_per_mtok": 1,
        "output_usd_per_mtok": 2,
        "context_window": 1000,
        "max_output_tokens": 500,
        **extra,
    }


BASE: dict[str, Any] = {
    "models": {"small": _model(), "big": _model(max_output_tokens=900), "oa": _model("openai")},
    "roles": {
        "builder": {"low": ["small", "big"], "medium": ["small", "big"], "high": ["big"]},
        "auditor": {"low": ["big"], "medium": ["big"], "high": ["big"]},
        "planner": {"low": ["small"], "medium": ["small"], "high": ["big"]},
    },
    "categories": {
        "docs": {"builder": {"low": ["oa"]}, "audit": "never"},
        "security": {"builder": {"medium": ["big"]}, "audit": "always"},
    },
    "escalation": {"after_failures": 2},
    "auditor": {"categories": ["payments"], "complexities": ["high"], "after_failures": 3},
    "limits": {"max_tokens": {"builder": 600, "auditor": 100, "planner": 200}},
}


def _router(**changes: Any) -> Router:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return Router(validate_routing(data))


def _problems(data: Any) -> list[dict[str, str]]:
    with pytest.raises(RoutingError) as info:
        validate_routing(data)
    problems: list[dict[str, str]] = info.value.details
    return problems


def _locs(data: Any) -> list[str]:
    return [problem["loc"] for problem in _problems(data)]


# --- the shipped file ------------------------------------------------------------------------


def test_default_routing_file_loads_and_is_package_data() -> None:
    resource = importlib.resources.files("autopack.llm").joinpath("routing.default.yaml")
    assert resource.is_file()
    config = load_routing()
    assert {"claude-sonnet-5-5", "claude-haiku-5-5", "gpt-5.4", "gpt-5.4-mini"} <= set(
        config.models
    )
    router = Router(config)
    for role in ("builder", "auditor", "planner"):
        for complexity in ("low", "medium", "high"):
            assert router.select(role, complexity).max_tokens > 0


def test_default_prices() -> None:
    models = load_routing().models
    prices = {
        name: (str(spec.input_usd_per_mtok), str(spec.output_usd_per_mtok))
        for name, spec in models.items()
    }
    # Decimals as written in the file (0.15, not a float's 0.1499999...).
    assert prices["claude-sonnet-5-5"] == ("2.0", "10.0")
    assert prices["claude-haiku-5-5"] == ("0.1", "0.5")
    assert prices["claude-opus-5-5"] == ("4.0", "20.0")
    assert prices["gpt-5.4"] == ("2.5", "15.0")
    assert prices["gpt-5.4-mini"] == ("0.75", "4.5")


def test_default_file_spells_out_the_schema_defaults() -> None:
    """The shipped file and the defaults a user's file falls back to must not drift apart."""
    config = load_routing()
    assert config.auditor == AuditorTriggers()
    assert tuple(config.auditor.categories) == DEFAULT_HIGH_RISK_CATEGORIES
    assert config.limits == Limits()
    assert config.escalation.after_failures == 2


def test_minimal_user_file_gets_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump({"models": BASE["models"], "roles": BASE["roles"]}))
    config = load_routing(path)
    assert config.limits.max_tokens.builder == 8192
    assert config.categories == {}


# --- validation ------------------------------------------------------------------------------


def test_unknown_models_in_chains_are_reported_with_paths() -> None:
    data = copy.deepcopy(BASE)
    data["roles"]["builder"]["medium"] = ["small", "gpt-9"]
    data["categories"]["docs"]["builder"]["low"] = ["nope"]
    problems = _problems(data)
    assert [p["loc"] for p in problems] == [
        "roles.builder.medium[1]",
        "categories.docs.builder.low[0]",
    ]
    assert (
        "unknown model 'gpt-9'; declared models are ['big', 'oa', 'small']"
        in (problems[0]["message"])
    )


def test_schema_errors_have_paths() -> None:
    data = copy.deepcopy(BASE)
    data["models"]["small"]["input_usd_per_mtok"] = -1
    data["models"]["big"]["provider"] = "gemini"
    data["models"]["oa"]["speed"] = "fast"
    data["roles"]["auditor"]["low"] = []
    del data["roles"]["planner"]["high"]
    data["categories"]["docs"]["audit"] = "sometimes"
    data["escalation"]["after_failures"] = 0
    data["limits"]["max_tokens"]["builder"] = 0
    data["unknown"] = 1
    assert set(_locs(data)) == {
        "models.small.input_usd_per_mtok",
        "models.big.provider",
        "models.oa.speed",
        "roles.auditor.low",
        "roles.planner.high",
        "categories.docs.audit",
        "escalation.after_failures",
        "limits.max_tokens.builder",
        "unknown",
    }


def test_category_keys_must_be_normalised() -> None:
    data = copy.deepcopy(BASE)
    data["categories"]["Database Migration"] = {"audit": "always"}
    assert _locs(data) == ["categories.Database Migration.[key]"]


def test_output_larger_than_context_is_refused() -> None:
    data = copy.deepcopy(BASE)
    data["models"]["small"]["max_output_tokens"] = 5000
    assert _locs(data) == ["models.small.max_output_tokens"]


def test_error_message_summarises(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["roles"]["builder"]["low"] = ["x", "y"]
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RoutingError) as info:
        load_routing(path)
    assert info.value.message.startswith(f"invalid routing file {path}: roles.builder.low[0]")
    assert info.value.message.endswith("(and 1 more)")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models: [1\n", "not valid YAML"),
        ("models: {}\nmodels: {}\n", "duplicate key 'models' at line 2"),
        ("- a\n", "expected a mapping"),
    ],
)
def test_unparseable_files(text: str, fragment: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_routing(text, source="r.yaml")
    assert fragment in info.value.message or fragment in str(info.value.details)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RoutingError, match="cannot be read"):
        load_routing(tmp_path / "missing.yaml")


# --- selection -------------------------------------------------------------------------------


def test_select_by_role_and_complexity() -> None:
    router = _router()
    choice = router.select("builder", "low")
    assert (choice.model, choice.provider, choice.step_in_chain) == ("small", "anthropic", 0)
    assert choice.chain == ("small", "big")
    assert choice.source == "role"
    assert router.select("builder", "high").model == "big"
    assert router.select("planner", "low").model == "small"


def test_max_tokens_is_the_role_limit_lowered_to_the_model() -> None:
    router = _router()
    assert router.select("builder", "low").max_tokens == 500  # small's max_output_tokens
    assert router.select("builder", "high").max_tokens == 600  # the builder limit
    assert router.select("auditor", "low").max_tokens == 100


@pytest.mark.parametrize(
    ("failures", "model", "step"),
    [(0, "small", 0), (1, "small", 0), (2, "big", 1), (3, "big", 1), (4, "big", 1), (50, "big", 1)],
)
def test_escalation_moves_along_the_chain_and_stays_at_its_end(
    failures: int, model: str, step: int
) -> None:
    choice = _router().select("builder", "medium", failures=failures)
    assert (choice.model, choice.step_in_chain) == (model, step)


def test_escalation_every_failure() -> None:
    router = _router(escalation={"after_failures": 1})
    assert router.select("builder", "low", failures=1).model == "big"


def test_category_chain_replaces_the_role_chain_for_its_complexities() -> None:
    router = _router()
    docs = router.select("builder", "low", category="docs")
    assert (docs.model, docs.provider, docs.source) == ("oa", "openai", "category:docs")
    # docs names no medium chain: the role's applies
    assert router.select("builder", "medium", category="docs").source == "role"
    # and no auditor chains at all
    assert router.select("auditor", "low", category="docs").source == "role"
    # free-text categories are normalised
    assert router.select("builder", "medium", category=" Security ").source == "category:security"
    assert router.select("builder", "low", category="unknown").source == "role"


def test_overrides_take_precedence() -> None:
    router = _router()
    choice = router.select("builder", "low", category="docs", overrides={"builder": "big"})
    assert (choice.model, choice.chain, choice.source) == ("big", ("big",), "override")
    chain = router.select("builder", "low", failures=2, overrides={"builder": ["oa", "small"]})
    assert (chain.model, chain.step_in_chain) == ("small", 1)
    # an override for another role leaves this one alone
    assert router.select("auditor", "low", overrides={"builder": "oa"}).model == "big"


def test_invalid_overrides_are_reported_with_paths() -> None:
    router = _router()
    with pytest.raises(RoutingError) as info:
        router.parse_overrides(
            {"builder": ["small", "gpt-9"], "critic": "big", "auditor": [], "planner": 5}
        )
    assert [p["loc"] for p in info.value.details] == [
        "models.builder[1]",
        "models.critic",
        "models.auditor",
        "models.planner",
    ]
    with pytest.raises(RoutingError, match=r"models\.builder: unknown model 'x'"):
        router.select("builder", "low", overrides={"builder": "x"})


def test_unknown_role_or_complexity() -> None:
    router = _router()
    with pytest.raises(RoutingError, match="unknown role 'critic'"):
        router.select("critic", "low")
    with pytest.raises(RoutingError, match="unknown complexity 'extreme'"):
        router.select("builder", "extreme")
    with pytest.raises(RoutingError, match="unknown model"):
        router.spec("nope")


def test_reachable_models() -> None:
    router = _router()
    assert router.reachable_models([("docs", "low")]) == {"oa", "big"}
    assert router.reachable_models([(None, "low")], overrides={"auditor": "small"}) == {
        "small",
        "big",
    }


def test_normalize_category() -> None:
    assert normalize_category("  Database   Migration ") == "database_migration"
    assert normalize_category("schema-migration") == "schema_migration"


# --- auditor triggers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "complexity", "failures", "expected", "reason"),
    [
        ("security", "low", 0, True, "always audited (categories.security.audit: always)"),
        ("docs", "high", 9, False, "never audited (categories.docs.audit: never)"),
        ("payments", "low", 0, True, "high-risk (auditor.categories)"),
        ("Payments", "low", 0, True, "high-risk"),
        (None, "high", 0, True, "complexity 'high' is always audited"),
        ("feature", "medium", 3, True, "3 consecutive failed attempts (auditor.after_failures: 3)"),
        ("feature", "medium", 2, False, "no auditor trigger applies"),
        (None, "low", 0, False, "no auditor trigger applies"),
    ],
)
def test_needs_audit(
    category: str | None, complexity: str, failures: int, expected: bool, reason: str
) -> None:
    audit, why = _router().needs_audit(category, complexity, failures)
    assert audit is expected
    assert reason in why


def test_audit_on_failures_can_be_disabled() -> None:
    router = _router(auditor={"categories": [], "complexities": [], "after_failures": None})
    assert router.needs_audit(None, "medium", 100) == (
        False,
        "no auditor trigger applies (category, complexity and failures)",
    )


def test_default_routing_text_is_the_file() -> None:
    assert "models:" in default_routing_text()


def test_routing_files_in_the_docs_are_valid() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "models.md"
    blocks = re.findall(r"```yaml\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
    files = [block for block in blocks if block.startswith("models:") and "\nroles:" in block]
    assert files, "docs/models.md shows a whole routing file"
    for block in files:
        Router(parse_routing(block, source="docs/models.md")).select("builder", "low")


def test_docs_describe_every_routing_key() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text(encoding="utf-8")
    keys = {
        *ModelSpec.model_fields,
        *RoutingConfig.model_fields,
        *CategoryRouting.model_fields,
        *AuditorTriggers.model_fields,
        "after_failures",
    }
    missing = sorted(key for key in keys if f"`{key}`" not in docs)
    assert missing == []
