"""The repo map: symbols per language, what is skipped, robustness, and the budgeted render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autopack.executor.repomap import (
    MAX_SYMBOLS_PER_FILE,
    build_repo_map,
    extract_symbols,
    is_ignored,
    workspace_reader,
)


def estimate(text: str) -> int:
    return (len(text.encode()) + 2) // 3


PYTHON = '''"""A module."""
from __future__ import annotations

MAX_SIZE = 10
_PRIVATE_LIMIT: int = 3
lower_case = 1


class Engine(Base, metaclass=Meta):
    LIMIT = 4

    def start(self, speed: int = 1) -> None:
        pass

    async def stop(self): ...


def helper(a, /, b: int = 2, *args: str, c, **kw: object) -> dict[str, int]:
    def inner() -> None: ...
    return {}


async def fetch(url: str) -> bytes:
    return b""
'''

TYPESCRIPT = """import x from "y";
export default async function load<T>(url: string): Promise<T> {
  return fetch(url);
}
export class Store {
  get(key: string) {}
}
export interface Props { a: number }
export type Id = string;
export const handler = async (req: Req) => {
const plain = 5;
export enum Color { Red }
  function nested() {}
"""

GO = """package m

func New(x int) (*T, error) {
func (t *T) Run(ctx context.Context) error {
type T struct {
type Getter interface {
"""

RUST = """pub fn add(a: i32) -> i32 {
pub(crate) async fn go() {}
pub struct Point {
impl Display for Point {
pub trait Shape {
    fn inner() {}
"""

JAVA = """package x;
public final class Accounts extends Base {
    public static int add(int a, int b) {
        if (a > b) {
    private List<String> names(String x) throws IOException {
    } else if (x) {
}
interface Ledger {}
"""

SHELL = """#!/bin/sh
setup() {
function teardown {
"""


def make_tree(root: Path) -> list[str]:
    """A small multi-language workspace; returns its file list as git would."""
    files = {
        "src/pkg/__init__.py": "",
        "src/pkg/core.py": PYTHON,
        "src/pkg/broken.py": "def broken(:\n    pass\n",
        "web/app.ts": TYPESCRIPT,
        "cmd/main.go": GO,
        "lib/shapes.rs": RUST,
        "java/Accounts.java": JAVA,
        "scripts/setup.sh": SHELL,
        "README.md": "# Project\n",
        "node_modules/left-pad/index.js": "function leftPad() {}\n",
        ".venv/lib/site.py": "def x(): pass\n",
        "src/pkg/__pycache__/core.cpython-311.pyc": "junk",
        "dist/bundle.js": "function bundled() {}\n",
        "web/vendor.min.js": "function a(){}\n",
        "package-lock.json": "{}\n",
        "huge.py": "X = 1\n" * 100_000,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "data.bin.txt").write_bytes(b"abc\x00def")
    return sorted([*files, "logo.png", "data.bin.txt"])


@pytest.fixture
def tree(tmp_path: Path) -> list[str]:
    return make_tree(tmp_path)


def test_python_symbols_via_ast() -> None:
    entry = extract_symbols("src/pkg/core.py", PYTHON)
    assert entry.note is None
    assert entry.symbols == (
        "constants: MAX_SIZE, _PRIVATE_LIMIT",
        "class Engine(Base, metaclass=Meta): start, stop",
        "def helper(a, /, b: int=2, *args: str, c, **kw: object) -> dict[str, int]",
        "async def fetch(url: str) -> bytes",
    )


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        (
            "web/app.ts",
            TYPESCRIPT,
            [
                "async function load<T>(url: string)",
                "class Store",
                "interface Props",
                "type Id",
                "const handler = async (req: Req) =>",
                "enum Color",
            ],
        ),
        (
            "cmd/main.go",
            GO,
            [
                "func New(x int) (*T, error)",
                "func (t *T) Run(ctx context.Context) error",
                "type T struct",
                "type Getter interface",
            ],
        ),
        (
            "lib/shapes.rs",
            RUST,
            [
                "fn add(a: i32)",
                "async fn go()",
                "struct Point",
                "impl Display for Point",
                "trait Shape",
            ],
        ),
        (
            "java/Accounts.java",
            JAVA,
            ["class Accounts", "  add(int a, int b)", "  names(String x)", "interface Ledger"],
        ),
        ("scripts/setup.sh", SHELL, ["setup()", "teardown()"]),
        ("README.md", "# Title\ndef not_python(): pass\n", []),
    ],
)
def test_regex_symbols_per_language(path: str, text: str, expected: list[str]) -> None:
    assert list(extract_symbols(path, text).symbols) == expected


@pytest.mark.parametrize(
    "text",
    [
        "def broken(:\n    pass\n",
        "x = 1\x00\n",
        "(" * 5000,
        "class A:\n  def f(self):\n return 1\n",
        "\ufeffdef f() -> None: ...\n",
    ],
    ids=["syntax", "nul", "deep-nesting", "indentation", "bom"],
)
def test_python_that_does_not_parse_is_listed_not_raised(text: str) -> None:
    entry = extract_symbols("bad.py", text)
    assert entry.path == "bad.py"
    if entry.symbols:  # the BOM case parses
        assert entry.symbols == ("def f() -> None",)
    else:
        assert entry.note is not None and entry.note.startswith("does not parse")


def test_pathological_lines_stay_fast() -> None:
    # Long lines of blanks and words used to be where backtracking regexes explode.
    for path in ("x.java", "x.ts", "x.go", "x.rs", "x.sh"):
        assert extract_symbols(path, "    " + "a " * 50_000 + "\n").path == path


def test_symbols_are_capped_per_file() -> None:
    text = "".join(f"def f{index}(): pass\n" for index in range(MAX_SYMBOLS_PER_FILE + 5))
    symbols = extract_symbols("many.py", text).symbols
    assert len(symbols) == MAX_SYMBOLS_PER_FILE + 1
    assert symbols[-1] == "… 5 more symbols"


def test_map_skips_vendored_generated_binary_and_huge(tmp_path: Path, tree: list[str]) -> None:
    repo_map = build_repo_map(tree, workspace_reader(tmp_path), max_file_bytes=100_000)
    listed = [entry.path for entry in repo_map.files]
    assert listed == [
        "README.md",
        "cmd/main.go",
        "java/Accounts.java",
        "lib/shapes.rs",
        "scripts/setup.sh",
        "src/pkg/__init__.py",
        "src/pkg/broken.py",
        "src/pkg/core.py",
        "web/app.ts",
    ]
    # Binary (by extension it is never read; by content it is read and refused) and huge files
    # are counted as skipped; vendored and generated paths are not candidates at all.
    assert set(repo_map.skipped) == {"data.bin.txt", "huge.py"}


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("node_modules/a/b.js", True),
        ("pkg/.venv/x.py", True),
        ("a/__pycache__/m.pyc", True),
        ("build/lib/x.py", True),
        ("static/app.min.js", True),
        ("yarn.lock", True),
        ("sub/poetry.lock", True),
        ("x.egg-info/PKG-INFO", True),
        ("img/logo.PNG", True),
        ("src/build_tools.py", False),
        ("src/distance.py", False),
        ("docs/index.md", False),
    ],
)
def test_is_ignored(path: str, ignored: bool) -> None:
    assert is_ignored(path) is ignored


def test_text_form_is_stable_and_compact(tmp_path: Path) -> None:
    (tmp_path / "b.py").write_text("def g(x) -> int:\n    return x\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.py").write_text("class K:\n    def f(self): ...\nLIMIT = 1\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    paths = ["b.py", "./a/m.py", "notes.txt", "b.py"]  # duplicates and ./ are normalised
    first = build_repo_map(paths, workspace_reader(tmp_path))
    again = build_repo_map(list(reversed(paths)), workspace_reader(tmp_path))
    assert first.text() == again.text()
    assert first.text() == (
        "a/m.py\n  constants: LIMIT\n  class K: f\nb.py\n  def g(x) -> int\nnotes.txt"
    )


def test_syntax_error_file_is_marked_in_the_map(tmp_path: Path, tree: list[str]) -> None:
    text = build_repo_map(tree, workspace_reader(tmp_path)).text()
    assert "src/pkg/broken.py  (does not parse: line 1)" in text


def test_render_prioritises_scope_neighbourhood(tmp_path: Path) -> None:
    paths = [
        "src/pkg/core.py",
        "src/pkg/util.py",
        "src/pkg/sub/deep.py",
        "src/other/far.py",
        "aaa/first_alphabetically.py",
        "tests/test_core.py",
    ]
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("def function_with_a_long_name(argument) -> None: ...\n")
    repo_map = build_repo_map(paths, workspace_reader(tmp_path))
    full = repo_map.render(10_000, scope_paths=["src/pkg/core.py"], estimate=estimate)
    assert full == repo_map.text()

    small = repo_map.render(60, scope_paths=["src/pkg/core.py"], estimate=estimate)
    assert estimate(small) <= 60
    assert "src/pkg/core.py" in small and "src/pkg/util.py" in small
    assert "aaa/first_alphabetically.py" not in small
    assert small.splitlines()[-1].endswith("more files not shown")

    # The ranking itself: inside the scope, same directory, same package, then the rest.
    for budget in range(10, 200, 5):
        text = repo_map.render(budget, scope_paths=["src/pkg/core.py"], estimate=estimate)
        assert estimate(text) <= budget
        shown = [line for line in text.splitlines() if line.endswith(".py") or ".py " in line]
        order = ["src/pkg/core.py", "src/pkg/util.py", "src/pkg/sub/deep.py", "src/other/far.py"]
        present = [any(line.startswith(path) for line in shown) for path in order]
        assert present == sorted(present, reverse=True), (budget, text)


def test_render_with_directory_and_glob_scope(tmp_path: Path) -> None:
    paths = ["src/a/x.py", "src/a/y.py", "src/b/z.py", "docs/readme.md"]
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("def some_function_name(): ...\n")
    repo_map = build_repo_map(paths, workspace_reader(tmp_path))
    for scope in (["src/b/"], ["src/b/*.py"], ["src/b"]):
        text = repo_map.render(30, scope_paths=scope, estimate=estimate)
        assert text.startswith("src/b/z.py"), (scope, text)


def test_render_degrades_to_names_then_to_a_count(tmp_path: Path) -> None:
    body = "".join(f"def function_number_{index}(argument): ...\n" for index in range(30))
    paths = [f"m{index}.py" for index in range(5)]
    for path in paths:
        (tmp_path / path).write_text(body)
    repo_map = build_repo_map(paths, workspace_reader(tmp_path))
    names_only = repo_map.render(40, estimate=estimate)
    assert "(symbols omitted)" in names_only
    assert estimate(names_only) <= 40
    assert repo_map.render(9, estimate=estimate) == "… 5 more files not shown"
    assert repo_map.render(8, estimate=estimate) == ""
    assert repo_map.render(0, estimate=estimate) == ""


def test_workspace_reader_refuses_escapes_and_odd_files(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "ok.txt").write_text("fine")
    (root / "latin1.txt").write_bytes(b"caf\xe9")
    (root / "big.txt").write_text("x" * 50)
    (tmp_path / "secret.txt").write_text("outside")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    (root / "dir").mkdir()
    read = workspace_reader(root, max_bytes=20)
    assert read("ok.txt") == "fine"
    assert read("./ok.txt") == "fine"
    assert read("latin1.txt") is None
    assert read("big.txt") is None
    assert read("link.txt") is None
    assert read("../secret.txt") is None
    assert read("dir") is None
    assert read("missing.txt") is None
