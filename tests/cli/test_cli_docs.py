"""The documentation keeps up with the code: every CLI command (and its options) is in
docs/cli.md, every example plan validates, and docs/plans.md's plans are valid and match
examples/plans/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from autopack.cli.main import app
from autopack.plans.loader import load_plan, parse_plan_text

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"
PLANS_DOC = ROOT / "docs" / "plans.md"
EXAMPLES = ROOT / "examples" / "plans"


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the click tree, as (path, command); groups included."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


COMMANDS = [
    (" ".join(("autopack", *path)), command) for path, command in walk(typer.main.get_command(app))
]
LEAVES = [(name, command) for name, command in COMMANDS if not hasattr(command, "commands")]


def section(doc: str, name: str) -> str | None:
    """The text under the heading that is exactly ``name`` (up to the next heading)."""
    match = re.search(rf"^#+ {re.escape(name)}\n(.*?)(?=^#)", doc + "\n#", re.M | re.S)
    return match.group(1) if match else None


def test_the_walk_finds_the_commands() -> None:
    names = {name for name, _ in LEAVES}
    assert {"autopack serve", "autopack runs cancel", "autopack db upgrade"} <= names


# The commands one runs, plus the root (for its global options).
DOCUMENTED = [*LEAVES, COMMANDS[0]]


@pytest.mark.parametrize(("name", "command"), DOCUMENTED, ids=[name for name, _ in DOCUMENTED])
def test_every_command_and_option_is_documented(name: str, command: Any) -> None:
    doc = CLI_DOC.read_text()
    text = section(doc, name)
    assert text is not None, f"docs/cli.md has no heading for `{name}`"
    for param in command.params:
        flags = [opt for opt in param.opts if opt.startswith("--")]
        if not flags or flags[0] == "--help":
            continue
        assert flags[0] in text, f"`{name}` does not document its option {flags[0]}"


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_example_plans_validate(path: Path) -> None:
    fmt = "json" if path.suffix == ".json" else "yaml"
    load_plan(path.read_bytes(), fmt=fmt)


def doc_plan_blocks() -> list[tuple[str, str]]:
    """(language, text) of the fenced json/yaml blocks of docs/plans.md that are plans."""
    blocks = re.findall(r"^```(json|yaml)\n(.*?)^```", PLANS_DOC.read_text(), re.M | re.S)
    plans = []
    for lang, text in blocks:
        data = parse_plan_text(text, fmt=lang)
        if isinstance(data, dict) and {"run", "tiers", "phases"} & data.keys():
            plans.append((lang, text))
    return plans


def test_plans_doc_blocks_validate() -> None:
    blocks = doc_plan_blocks()
    assert {lang for lang, _ in blocks} == {"json", "yaml"}
    for lang, text in blocks:
        load_plan(text, fmt=lang)


def test_plans_doc_shows_the_example_files() -> None:
    documented = [parse_plan_text(text, fmt=lang) for lang, text in doc_plan_blocks()]
    for path in EXAMPLES.iterdir():
        fmt = "json" if path.suffix == ".json" else "yaml"
        assert parse_plan_text(path.read_text(), fmt=fmt) in documented, (
            f"docs/plans.md does not show {path.name}"
        )
