"""The Builder's context: priority, the budget, what is always present, what is left out."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from autopack.executor.context import (
    BuilderContext,
    ContextBudgetError,
    PhaseBrief,
    build_context,
    describe_failure,
    expand_scope,
    fence,
    head_tail,
    scope_matches,
)
from autopack.executor.prompts import BUILDER_SYSTEM_PROMPT
from autopack.executor.repomap import RepoMap, build_repo_map, workspace_reader
from autopack.plans.models import PhaseScope, PhaseSpec
from autopack.runs.models import Complexity, Phase


def estimate(text: str) -> int:
    return (len(text.encode()) + 2) // 3


def word_estimate(text: str) -> int:
    """A second, differently shaped estimator: words and punctuation, roughly like BPE."""
    return len(re.findall(r"\w+|[^\w\s]", text)) + text.count("\n")


RULE = "Never call print() in library code; use the module's logger."
FAILURE_HEAD = "Reason: 1 new failing test against the baseline"
FAILURE_TAIL = "E   AssertionError: assert 3 == 4"


def long_failure() -> str:
    middle = "\n".join(f"    frame {index}: some/module.py line {index}" for index in range(400))
    return f"{FAILURE_HEAD}\n{middle}\n{FAILURE_TAIL}"


def write(root: Path, files: dict[str, str]) -> list[str]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(files)


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[list[str], Path]:
    files = {
        "src/calc/__init__.py": '"""Calculator."""\n',
        "src/calc/ops.py": "def add(a: int, b: int) -> int:\n    return a + b\n",
        "src/calc/big.py": "".join(f"VALUE_{index} = {index}\n" for index in range(2_000)),
        "src/calc/parser.py": "class Parser:\n    def parse(self, text: str) -> list[str]: ...\n",
        "tests/test_ops.py": "from calc.ops import add\n\ndef test_add():\n    assert add(1, 2)\n",
        "docs/usage.md": "# Usage\n\nCall `add`.\n",
        "web/app.ts": "export function main(): void {}\n",
    }
    paths = write(tmp_path, files)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "blob.dat").write_bytes(b"\x00\x01binary")
    return [*paths, "assets/blob.dat"], tmp_path


def phase(**overrides: object) -> PhaseBrief:
    values: dict[str, object] = {
        "name": "Add subtraction",
        "description": "Add `sub(a, b)` to calc.ops with a test.",
        "task_category": "feature",
        "complexity": "medium",
        "paths": ("src/calc/ops.py", "tests/test_ops.py"),
        "read_only_context": ("src/calc/parser.py", "docs/"),
        "acceptance_criteria": ("sub(5, 3) == 2", "existing tests still pass"),
        "test_cmd": "pytest -q",
        "phase_id": "p-sub",
    }
    values.update(overrides)
    return PhaseBrief(**values)  # type: ignore[arg-type]


def build(
    workspace: tuple[list[str], Path],
    budget: int,
    *,
    brief: PhaseBrief | None = None,
    estimator: Callable[[str], int] = estimate,
    **kwargs: object,
) -> BuilderContext:
    files, root = workspace
    return build_context(
        brief or phase(),
        files=files,
        read=workspace_reader(root),
        budget=budget,
        estimate=estimator,
        **kwargs,  # type: ignore[arg-type]
    )


def titles(context: BuilderContext) -> list[str]:
    return [section.title for section in context.sections]


def test_everything_fits_in_a_generous_budget(workspace: tuple[list[str], Path]) -> None:
    context = build(
        workspace,
        100_000,
        rules=[RULE],
        previous_failure="Reason: tests failed",
        snippets=[("web/app.ts", "export function main(): void {}", 0.5)],
    )
    assert titles(context) == [
        "Task",
        "Acceptance criteria",
        "Files you may edit",
        "Read-only context",
        "Retrieved context",
        "Repository map",
        "Learned rules",
        "Previous attempt failed",
        "Your reply",
    ]
    assert context.included_files == (
        "src/calc/ops.py",
        "tests/test_ops.py",
        "src/calc/parser.py",
        "docs/usage.md",
    )
    assert context.truncated_files == ()
    assert context.omitted == ()
    message = context.user_message()
    assert context.estimated_tokens == estimate(message) <= 100_000
    assert "`src/calc/ops.py`\n```python\ndef add(a: int, b: int) -> int:\n" in message
    assert "Paths you may write: `src/calc/ops.py`, `tests/test_ops.py`" in message
    assert "Test command: `pytest -q`" in message
    assert "- sub(5, 3) == 2" in message
    assert "`web/app.ts` (excerpt, score 0.50)" in message
    assert "src/calc/big.py\n  constants: VALUE_0" in message  # the map, near the scope


def test_render_messages_is_one_system_and_one_user_message(
    workspace: tuple[list[str], Path],
) -> None:
    context = build(workspace, 10_000)
    messages = context.render_messages(BUILDER_SYSTEM_PROMPT)
    assert messages == [("system", BUILDER_SYSTEM_PROMPT), ("user", context.user_message())]
    assert re.findall(r"^## (.+)$", messages[1][1], re.M) == titles(context)


@pytest.mark.parametrize("estimator", [estimate, word_estimate], ids=["bytes", "words"])
@pytest.mark.parametrize("budget", [*range(700, 3000, 150), 5_000, 20_000])
def test_budget_is_respected_and_rules_and_failure_always_present(
    workspace: tuple[list[str], Path], budget: int, estimator: Callable[[str], int]
) -> None:
    context = build(
        workspace,
        budget,
        brief=phase(paths=("src/calc/",), read_only_context=("tests/", "docs/usage.md")),
        estimator=estimator,
        rules=[RULE, "Type every public function."],
        previous_failure=long_failure(),
        snippets=[("web/app.ts", "export function main(): void {}\n" * 20, 0.9)],
    )
    message = context.user_message()
    assert context.estimated_tokens == estimator(message) <= budget
    assert context.section("rules") is not None and RULE[:30] in message
    failure = context.section("failure")
    assert failure is not None
    assert FAILURE_HEAD in failure.content and FAILURE_TAIL in failure.content
    assert context.section("task") is not None
    # Every scope and read-only file is accounted for: shown (maybe cut) or reported left out.
    expected = {"src/calc/__init__.py", "src/calc/ops.py", "src/calc/big.py", "src/calc/parser.py"}
    expected |= {"tests/test_ops.py", "docs/usage.md"}
    assert set(context.included_files) | set(context.omitted_files) == expected
    assert not set(context.included_files) & set(context.omitted_files)
    if context.omitted:
        note = context.section("omitted")
        assert note is not None
        for item in context.omitted[:20]:
            assert item.path in note.content


def test_scope_files_come_first_and_big_ones_are_cut(workspace: tuple[list[str], Path]) -> None:
    brief = phase(paths=("src/calc/big.py", "src/calc/ops.py"), read_only_context=("docs/",))
    context = build(workspace, 2_000, brief=brief, rules=[RULE], previous_failure="Reason: x")
    # Both scope files come before any read-only context: ops.py whole, then as much of
    # big.py (larger than the whole budget) as the rest of the room holds, marked as cut.
    assert context.included_files == ("src/calc/big.py", "src/calc/ops.py")
    assert context.truncated_files == ("src/calc/big.py",)
    assert context.estimated_tokens > 1_900
    editable = context.section("editable")
    assert editable is not None
    assert "VALUE_0 = 0\n" in editable.content
    assert re.search(r"\[truncated: lines 1-\d+ of 2000 shown\.", editable.content)
    assert [(item.path, item.kind) for item in context.omitted] == [
        ("docs/usage.md", "read_only"),
        ("repository map", "repo_map"),
    ]
    assert context.omitted_files == ("docs/usage.md",)
    note = context.section("omitted")
    assert note is not None
    assert "- docs/usage.md (read-only: no room)\n- repository map (repo-map: no room)" in (
        note.content
    )


def test_a_big_file_in_a_directory_scope_is_cut_after_its_small_siblings(
    workspace: tuple[list[str], Path],
) -> None:
    brief = phase(paths=("src/calc/",), read_only_context=("docs/",))
    context = build(workspace, 1_500, brief=brief)
    # Shown in scope order; big.py, second by name, did not fit whole and got the room left.
    assert context.included_files == (
        "src/calc/__init__.py",
        "src/calc/big.py",
        "src/calc/ops.py",
        "src/calc/parser.py",
    )
    assert context.truncated_files == ("src/calc/big.py",)
    assert context.omitted_files == ("docs/usage.md",)
    assert context.estimated_tokens <= 1_500
    editable = context.section("editable")
    assert editable is not None
    headings = re.findall(r"^`([^`]+)`", editable.content, re.M)
    assert headings == list(context.included_files)


def test_new_and_unmatched_scope_entries_are_named(workspace: tuple[list[str], Path]) -> None:
    brief = phase(paths=("src/calc/ops.py", "src/calc/trig.py", "lib/**/*.rs"))
    context = build(workspace, 10_000, brief=brief)
    editable = context.section("editable")
    assert editable is not None
    assert editable.content.startswith(
        "Not in the repository yet (create as needed): `src/calc/trig.py`, `lib/**/*.rs`"
    )


def test_binary_and_missing_paths_are_reported(workspace: tuple[list[str], Path]) -> None:
    brief = phase(paths=("assets/",), read_only_context=("docs/missing.md",))
    context = build(workspace, 10_000, brief=brief)
    assert [(item.path, item.kind, item.reason) for item in context.omitted] == [
        ("assets/blob.dat", "editable", "binary, unreadable or too large"),
        ("docs/missing.md", "read_only", "not found"),
    ]
    assert context.included_files == ()


def test_read_only_duplicates_of_scope_files_are_shown_once(
    workspace: tuple[list[str], Path],
) -> None:
    brief = phase(paths=("src/calc/ops.py",), read_only_context=("src/calc/",))
    context = build(
        workspace,
        100_000,
        brief=brief,
        snippets=[("src/calc/ops.py", "def add", 0.99), ("./web/app.ts", "export", 0.1)],
    )
    assert context.included_files.count("src/calc/ops.py") == 1
    assert context.user_message().count("\n`src/calc/ops.py`\n```") == 1
    retrieved = context.section("retrieved")
    assert retrieved is not None and "`web/app.ts` (excerpt, score 0.10)" in retrieved.content


def test_snippets_go_best_score_first(workspace: tuple[list[str], Path]) -> None:
    snippets = [("a.py", "low = 1", 0.1), ("b.py", "high = 1", 0.9), ("c.py", "mid = 1", 0.5)]
    context = build(workspace, 100_000, snippets=snippets)
    retrieved = context.section("retrieved")
    assert retrieved is not None
    headings = re.findall(r"^`([^`]+)`", retrieved.content, re.M)
    assert headings == ["b.py", "c.py", "a.py"]


def test_many_rules_keep_the_first_and_say_how_many_were_left_out(
    workspace: tuple[list[str], Path],
) -> None:
    rules = [f"Rule number {index}: " + "be careful " * 20 for index in range(40)]
    context = build(workspace, 3_000, rules=rules)
    section = context.section("rules")
    assert section is not None
    assert "Rule number 0:" in section.content
    assert re.search(r"\((\d+) more rules left out for room\)", section.content)
    assert context.estimated_tokens <= 3_000


def test_one_huge_rule_is_cut_not_dropped(workspace: tuple[list[str], Path]) -> None:
    context = build(workspace, 2_000, rules=["Always " + "x " * 5_000])
    section = context.section("rules")
    assert section is not None and "- Always" in section.content
    assert context.estimated_tokens <= 2_000


def test_empty_rules_and_no_failure_leave_no_sections(workspace: tuple[list[str], Path]) -> None:
    context = build(workspace, 10_000, rules=["", "  "], previous_failure="   ")
    assert context.section("rules") is None
    assert context.section("failure") is None


def test_a_budget_too_small_for_the_essentials_is_an_error(
    workspace: tuple[list[str], Path],
) -> None:
    with pytest.raises(ContextBudgetError) as caught:
        build(workspace, 60, rules=[RULE], previous_failure=long_failure())
    assert caught.value.code == "context_budget_too_small"
    with pytest.raises(ContextBudgetError):
        build(workspace, 0)


def test_a_cached_repo_map_is_used(workspace: tuple[list[str], Path]) -> None:
    root = workspace[1]
    cached = build_repo_map(["src/calc/ops.py"], workspace_reader(root))
    context = build(workspace, 10_000, repo_map=cached)
    repo_map = context.section("repo_map")
    assert repo_map is not None
    assert repo_map.content == "src/calc/ops.py\n  def add(a: int, b: int) -> int"
    assert build(workspace, 10_000, repo_map=RepoMap(files=())).section("repo_map") is None


def test_file_contents_with_fences_cannot_break_out(tmp_path: Path) -> None:
    files = write(tmp_path, {"README.md": "Example:\n\n```python\nprint(1)\n```\n"})
    context = build_context(
        PhaseBrief(name="docs", paths=("README.md",)),
        files=files,
        read=workspace_reader(tmp_path),
        budget=5_000,
        estimate=estimate,
    )
    assert "`README.md`\n````markdown\nExample:" in context.user_message()


@pytest.mark.parametrize(
    ("entry", "path", "matches"),
    [
        ("src/calc/ops.py", "src/calc/ops.py", True),
        ("src/calc/ops.py", "src/calc/ops.pyc", False),
        ("src/calc", "src/calc/ops.py", True),
        ("src/calc/", "src/calc/sub/x.py", True),
        ("./src/calc/", "src/calc/ops.py", True),
        ("src/cal", "src/calc/ops.py", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/pkg/a.py", False),
        ("src/*", "src/pkg/a.py", True),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/pkg/deep/a.py", True),
        ("src/**", "src/pkg/a.txt", True),
        ("**/test_*.py", "tests/unit/test_x.py", True),
        ("**/test_*.py", "test_x.py", True),
        ("tests/test_?.py", "tests/test_a.py", True),
        ("tests/test_[ab].py", "tests/test_b.py", True),
        ("tests/test_[!ab].py", "tests/test_b.py", False),
        ("src/a+b.py", "src/a+b.py", True),
        (".", "anything/at/all.py", True),
        ("./", "anything.py", True),
    ],
)
def test_scope_matches(entry: str, path: str, matches: bool) -> None:
    assert scope_matches(entry, path) is matches


def test_expand_scope_sorts_and_keeps_empty_entries() -> None:
    files = ["src/b.py", "src/a.py", "./src/a.py", "docs/x.md"]
    assert expand_scope(["src/*.py", "nothing/"], files) == [
        ("src/*.py", ["src/a.py", "src/b.py"]),
        ("nothing/", []),
    ]


def test_head_tail_keeps_both_ends() -> None:
    text = long_failure()
    cut = head_tail(text, 100, estimate)
    assert estimate(cut) <= 100
    assert cut.startswith(FAILURE_HEAD) and cut.endswith(FAILURE_TAIL)
    assert "lines omitted" in cut
    one_line = "x" * 10_000
    cut = head_tail(one_line, 50, estimate)
    assert estimate(cut) <= 50 and "characters omitted" in cut
    assert head_tail("short", 100, estimate) == "short"


def test_describe_failure() -> None:
    text = describe_failure(
        "2 new failing tests",
        failing_tests=[("tests/test_a.py::test_x", "E  assert 1 == 2\n" + "noise\n" * 1_000)],
        apply_errors=["src/a.py: SEARCH text not found"],
        governance_violations=["write outside scope: setup.py"],
        auditor_issues=["[major] src/a.py: missing test"],
        max_excerpt_chars=300,
    )
    assert text.startswith("Reason: 2 new failing tests\n\nNew failing tests:\n")
    assert "- tests/test_a.py::test_x\n    E  assert 1 == 2" in text
    assert "characters omitted" in text
    assert "Edits that could not be applied:\n- src/a.py: SEARCH text not found" in text
    assert "Governance violations:\n- write outside scope: setup.py" in text
    assert "Auditor issues:\n- [major] src/a.py: missing test" in text
    assert "```" not in text  # the whole failure is fenced once, in the prompt


def test_phase_brief_from_spec_and_from_record() -> None:
    spec = PhaseSpec(
        phase_id="p1",
        tier_id="t1",
        name="Do it",
        description="All of it",
        task_category="feature",
        complexity=Complexity.HIGH,
        scope=PhaseScope(
            paths=["src/"], read_only_context=["docs/"], acceptance_criteria=["ok"], test_cmd="t"
        ),
    )
    expected = PhaseBrief(
        name="Do it",
        description="All of it",
        task_category="feature",
        complexity="high",
        paths=("src/",),
        read_only_context=("docs/",),
        acceptance_criteria=("ok",),
        test_cmd="t",
        phase_id="p1",
    )
    assert PhaseBrief.from_spec(spec) == expected
    record = Phase(
        phase_id="p1",
        name="Do it",
        description="All of it",
        task_category="feature",
        complexity=Complexity.HIGH,
        scope=spec.scope.model_dump(),
    )
    assert PhaseBrief.from_record(record) == expected


def test_fence_grows_past_backtick_runs() -> None:
    assert fence("a") == "```\na\n```"
    assert fence("x ```` y", "md") == "`````md\nx ```` y\n`````"


MARKERS = (
    "<<<<<<< SEARCH",
    "=======",
    ">>>>>>> REPLACE",
    "<<<<<<< FILE",
    ">>>>>>> FILE",
    "<<<<<<< DELETE",
    ">>>>>>> DELETE",
)


def test_builder_prompt_teaches_the_edit_format() -> None:
    for marker in MARKERS:
        assert f"\n{marker}\n" in BUILDER_SYSTEM_PROMPT
    assert "unified diff" in BUILDER_SYSTEM_PROMPT
    assert "An empty SEARCH creates a new file" in BUILDER_SYSTEM_PROMPT
    assert '"Paths you may write"' in BUILDER_SYSTEM_PROMPT


def test_builder_prompt_agrees_with_the_edit_format_document_and_parser() -> None:
    document = Path(__file__).resolve().parents[2] / "docs" / "edit-format.md"
    text = document.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker in text
    from autopack.executor import edits

    # The prompt's own examples are valid replies: what it teaches, the parser accepts.
    examples = BUILDER_SYSTEM_PROMPT.split("\n\n")
    blocks = [example for example in examples if example.startswith("path/to/")]
    assert len(blocks) == 3
    parsed = edits.parse_reply("\n\n".join(blocks))
    assert [type(edit).__name__ for edit in parsed.edits] == [
        "SearchReplace",
        "WholeFile",
        "DeleteFile",
    ]


def test_context_file_blocks_are_valid_path_lines_for_the_parser(
    workspace: tuple[list[str], Path],
) -> None:
    # A model imitating how the context shows a file writes a path line the parser accepts.
    from autopack.executor import edits

    editable = build(workspace, 10_000).section("editable")
    assert editable is not None
    path_line = editable.content.split("\n")[0]
    reply = f"{path_line}\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n"
    assert edits.parse_reply(reply).edits[0].path == "src/calc/ops.py"


def test_a_known_fix_follows_the_failure_and_keeps_to_its_share(
    workspace: tuple[list[str], Path],
) -> None:
    fix = "Fixed before in phase p1 of run r1: test_add failed\n\n" + "+    return a + b\n" * 400
    context = build(workspace, 4_000, previous_failure="Reason: x", known_fixes=[fix])
    names = titles(context)
    assert names.index("Known fix") == names.index("Previous attempt failed") + 1
    section = context.section("known_fix")
    assert section is not None
    assert "Fixed before in phase p1 of run r1" in section.content
    assert estimate(section.render()) <= 4_000 * 0.10 + 20
    assert context.estimated_tokens <= 4_000
    # None known: no section.
    assert "Known fix" not in titles(build(workspace, 4_000, previous_failure="Reason: x"))
