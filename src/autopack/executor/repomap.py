"""A compact map of a workspace: its files and their top-level symbols, for the Builder's prompt.

The map is built from a list of relative paths and a ``read(path)`` callable rather than by walking
a directory, so a git workspace can hand over ``git ls-files`` and ignored files never appear.
Python is read with ``ast``; JS/TS, Go, Rust, Java and shell get one small regex set each (enough to
name top-level declarations, not a parser); every other text file is listed by path alone. Nothing
here raises on bad input: a file that does not parse is listed with a note instead.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ReadFn = Callable[[str], str | None]
TokenEstimator = Callable[[str], int]

# Larger files are generated data or bundles far more often than hand-written code, and parsing
# them would cost more than the map is worth.
DEFAULT_MAX_FILE_BYTES = 256_000
# A file with hundreds of symbols (a generated client, say) would crowd out the rest of the map.
MAX_SYMBOLS_PER_FILE = 40
# Signatures with long defaults or annotations are cut: the map names things, it does not document.
MAX_SIGNATURE_CHARS = 140

SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "bower_components",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".eggs",
        "dist",
        "build",
        "target",
        "vendor",
        "third_party",
        "site-packages",
        ".next",
        ".nuxt",
        ".gradle",
        ".idea",
        ".vscode",
        "htmlcov",
        "coverage",
        ".autonomous_runs",
    }
)
LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "Pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "Cargo.lock",
        "Gemfile.lock",
        "composer.lock",
        "go.sum",
        "bun.lockb",
    }
)
GENERATED_SUFFIXES = (".min.js", ".min.css", ".js.map", ".css.map", "_pb2.py", "_pb2_grpc.py")
BINARY_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tiff", ".psd",
        ".pdf", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".tar", ".rar", ".jar", ".war",
        ".class", ".so", ".dylib", ".dll", ".exe", ".o", ".a", ".lib", ".whl", ".egg",
        ".pyc", ".pyo", ".pyd", ".woff", ".woff2", ".ttf", ".otf", ".eot",
        ".mp3", ".mp4", ".mov", ".avi", ".wav", ".ogg", ".flac", ".webm",
        ".sqlite", ".sqlite3", ".db", ".bin", ".npy", ".npz", ".pkl", ".pickle", ".parquet",
        ".onnx", ".pt", ".safetensors",
    }
)  # fmt: skip

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "js",
    ".jsx": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".ts": "js",
    ".tsx": "js",
    ".mts": "js",
    ".cts": "js",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
}

_CAPS = re.compile(r"^_*[A-Z][A-Z0-9_]+$")  # two characters at least: `T` is a TypeVar


def _top(pattern: str) -> re.Pattern[str]:
    # "\s" here means a blank within the line: a declaration never spans lines in these patterns,
    # and a pattern that could cross newlines backtracks badly on long files.
    return re.compile(pattern.replace(r"\s", r"[ \t]"), re.MULTILINE)


# Every pattern is anchored at the start of a line with no indentation (Java methods excepted, at
# one level), which is what "top level" means to a regex. Group 1 is what the map shows.
_JS_EXPORT = r"(?:export\s+(?:default\s+)?)?(?:declare\s+)?"
_RUST_VIS = r"(?:pub(?:\([^)\n]*\))?\s+)?"
_JAVA_MODS = (
    r"(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed|strictfp)\s+)*"
)
_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "js": (
        _top(rf"^{_JS_EXPORT}((?:async\s+)?function\s*\*?\s*\w+\s*(?:<[^>\n]*>)?\([^)\n]*\))"),
        _top(rf"^{_JS_EXPORT}((?:abstract\s+)?class\s+\w+)"),
        _top(rf"^{_JS_EXPORT}((?:interface|type|enum|const\s+enum|namespace)\s+\w+)"),
        _top(
            rf"^{_JS_EXPORT}((?:const|let|var)\s+\w+\s*(?::[^=\n]+)?=\s*(?:async\s+)?"
            r"(?:function\b|(?:\([^)\n]*\)|\w+)\s*(?::[^=\n]+)?=>))"
        ),
    ),
    "go": (
        _top(r"^(func\s+(?:\([^)\n]*\)\s*)?\w+(?:\[[^\]\n]*\])?\([^)\n]*\)[^{\n]*?)\s*\{?\s*$"),
        _top(r"^(type\s+\w+(?:\[[^\]\n]*\])?\s+(?:struct|interface|func\b|[\w.*\[\]]+))"),
    ),
    "rust": (
        _top(
            rf"^{_RUST_VIS}((?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+\"\w+\"\s+)?"
            r"fn\s+\w+(?:\s*<[^>\n]*>)?(?:\([^)\n]*\))?)"
        ),
        _top(rf"^{_RUST_VIS}((?:struct|enum|trait|union|type|mod)\s+\w+)"),
        _top(r"^((?:unsafe\s+)?impl\b[^{;\n]*?)\s*(?:\{|where\b|$)"),
    ),
    "java": (
        _top(rf"^{_JAVA_MODS}((?:class|interface|enum|record|@interface)\s+\w+)"),
        _top(
            rf"^(?:    |\t){_JAVA_MODS}(?:<[^>\n]+>\s+)?[\w.\[\]?]+(?:<[^\n(){{}};]*>)?(?:\[\])*"
            r"\s+(\w+\s*\([^)\n]*\))\s*(?:throws\s+[\w., \t]+)?\s*\{"
        ),
    ),
    "shell": (
        _top(r"^(?:function\s+)?([A-Za-z_][\w:.-]*)\s*\(\)\s*\{?"),
        _top(r"^function\s+([A-Za-z_][\w:.-]*)\s*\{"),
    ),
}
# Java control flow at one indentation level looks like a method call followed by a brace.
_JAVA_NOT_METHODS = frozenset({"if", "for", "while", "switch", "catch", "synchronized", "return"})


def approximate_tokens(text: str) -> int:
    """Fallback estimator, deliberately pessimistic (source code runs near 4 bytes a token).

    Callers that know the model pass the LLM module's estimator instead.
    """
    return (len(text.encode("utf-8")) + 2) // 3


@dataclass(frozen=True)
class FileSymbols:
    """One file of the map: its path, top-level symbols in source order, and an optional note."""

    path: str
    symbols: tuple[str, ...] = ()
    note: str | None = None

    def render(self, *, with_symbols: bool = True) -> str:
        head = self.path if self.note is None else f"{self.path}  ({self.note})"
        if not with_symbols or not self.symbols:
            return head
        return "\n".join([head, *(f"  {symbol}" for symbol in self.symbols)])


@dataclass(frozen=True)
class RepoMap:
    """Files sorted by path. ``skipped`` holds the paths left out as binary, huge or unreadable
    (vendored and generated paths are not even counted: they were never candidates)."""

    files: tuple[FileSymbols, ...]
    skipped: tuple[str, ...] = ()

    def text(self) -> str:
        """The whole map, in path order."""
        return "\n".join(entry.render() for entry in self.files)

    def render(
        self,
        max_tokens: int,
        *,
        scope_paths: Sequence[str] = (),
        estimate: TokenEstimator = approximate_tokens,
    ) -> str:
        """The map cut to ``max_tokens``: files near the scope first, shown in path order.

        A file whose symbols do not fit is still named (``symbols omitted``); when even names stop
        fitting, a last line says how many files were left out. Returns "" when nothing fits.
        """
        if max_tokens <= 0 or not self.files:
            return ""
        anchors = _scope_anchors(scope_paths, frozenset(entry.path for entry in self.files))
        ranked = sorted(self.files, key=lambda entry: _proximity_key(entry.path, anchors))
        chosen: dict[str, str] = {}
        used = 0
        for entry in ranked:
            remaining = len(ranked) - len(chosen) - 1
            # Room for the "more files" line is kept back whenever files would remain after this.
            reserve = estimate(_more_line(remaining)) + 1 if remaining else 0
            block = entry.render()
            cost = estimate(block) + 1
            if used + cost + reserve > max_tokens:
                block = entry.render(with_symbols=False)
                if entry.symbols:
                    block += "  (symbols omitted)"
                cost = estimate(block) + 1
                if used + cost + reserve > max_tokens:
                    break
            chosen[entry.path] = block
            used += cost
        # The per-block sum is only an estimate of the joined text (tokenizers are not additive):
        # the final text is measured, and files are dropped from the lowest priority until it fits.
        order = [entry.path for entry in ranked if entry.path in chosen]
        while True:
            text = _join_map(chosen, len(self.files))
            if estimate(text) <= max_tokens or not chosen:
                break
            del chosen[order.pop()]
        if not chosen:
            line = _more_line(len(self.files))
            return line if estimate(line) <= max_tokens else ""
        return text


def _join_map(chosen: dict[str, str], total: int) -> str:
    lines = [chosen[path] for path in sorted(chosen)]
    if total > len(chosen):
        lines.append(_more_line(total - len(chosen)))
    return "\n".join(lines)


def _more_line(count: int) -> str:
    return f"… {count} more file{'s' if count != 1 else ''} not shown"


def _scope_prefix(entry: str) -> PurePosixPath:
    """The directories of a scope entry before any glob character (all of it when it has none)."""
    parts: list[str] = []
    for part in PurePosixPath(normalize_path(entry)).parts:
        if any(char in part for char in "*?["):
            break
        parts.append(part)
    return PurePosixPath(*parts)


def _scope_anchors(
    scope_paths: Sequence[str], known: frozenset[str]
) -> list[tuple[PurePosixPath, PurePosixPath]]:
    """For each scope entry: (what a file must lie in or be to count as inside the scope, the
    directory that files near it share). A file entry's neighbours are in its directory."""
    anchors = []
    for entry in scope_paths:
        prefix = _scope_prefix(entry)
        if not prefix.parts:
            continue
        clean = normalize_path(entry)
        is_file = clean in known or (
            not entry.endswith("/") and "." in prefix.name and clean == str(prefix)
        )
        anchors.append((prefix, prefix.parent if is_file else prefix))
    return anchors


def _proximity_key(
    path: str, anchors: Sequence[tuple[PurePosixPath, PurePosixPath]]
) -> tuple[int, int, int, str]:
    """Sort key: files inside a scope entry first; then by how many leading directories they
    share with one, a file in that very directory before one in a subdirectory of it (same
    directory, then same package, ...); then by path, for stability."""
    file_path = PurePosixPath(path)
    directories = file_path.parent.parts
    inside = False
    best = (0, len(directories))
    for prefix, near in anchors:
        if file_path == prefix or prefix in file_path.parents:
            inside = True
        shared = 0
        for mine, theirs in zip(directories, near.parts, strict=False):
            if mine != theirs:
                break
            shared += 1
        best = min(best, (-shared, len(directories) - shared))
    return (0 if inside else 1, best[0], best[1], path)


def normalize_path(path: str) -> str:
    """Workspace-relative POSIX form: forward slashes, no leading ``./`` and no trailing ``/``."""
    clean = path.replace("\\", "/").strip()
    while clean.startswith("./"):
        clean = clean[2:]
    return clean.rstrip("/")


def is_ignored(path: str) -> bool:
    """Vendored, generated, lock and binary files: never worth a place in a prompt."""
    pure = PurePosixPath(path)
    if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in pure.parts[:-1]):
        return True
    name = pure.name
    if name in LOCK_FILES or name.endswith(GENERATED_SUFFIXES):
        return True
    return pure.suffix.lower() in BINARY_EXTENSIONS


def looks_binary(text: str) -> bool:
    # A NUL character never occurs in source text and almost always in binary formats.
    return "\x00" in text[:8192]


def language_of(path: str) -> str | None:
    return LANGUAGES.get(PurePosixPath(path).suffix.lower())


def build_repo_map(
    paths: Iterable[str], read: ReadFn, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> RepoMap:
    """Map the given files. ``read`` returns a file's text, or None when it cannot be read."""
    files: list[FileSymbols] = []
    skipped: list[str] = []
    for path in sorted({normalize_path(path) for path in paths if path.strip()}):
        if not path or is_ignored(path):
            continue
        text = read(path)
        if text is None or looks_binary(text) or len(text.encode("utf-8")) > max_file_bytes:
            skipped.append(path)
            continue
        files.append(extract_symbols(path, text))
    return RepoMap(files=tuple(files), skipped=tuple(skipped))


def extract_symbols(path: str, text: str) -> FileSymbols:
    """Top-level symbols of one file; never raises."""
    language = language_of(path)
    if language is None:
        return FileSymbols(path)
    if language == "python":
        try:
            symbols = _python_symbols(text)
        except SyntaxError as exc:
            return FileSymbols(path, note=f"does not parse: line {exc.lineno}")
        except (ValueError, RecursionError, MemoryError):
            # ast.parse raises ValueError on NUL bytes and RecursionError on absurd nesting.
            return FileSymbols(path, note="does not parse")
    else:
        symbols = _regex_symbols(language, text)
    if len(symbols) > MAX_SYMBOLS_PER_FILE:
        extra = len(symbols) - MAX_SYMBOLS_PER_FILE
        symbols = [*symbols[:MAX_SYMBOLS_PER_FILE], f"… {extra} more symbols"]
    return FileSymbols(path, tuple(symbols))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SIGNATURE_CHARS else text[: MAX_SIGNATURE_CHARS - 1] + "…"


def _python_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return _clip(f"{prefix} {node.name}({ast.unparse(node.args)}){returns}")


def _python_symbols(text: str) -> list[str]:
    tree = ast.parse(text)
    symbols: list[str] = []
    constants: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            symbols.append(_python_signature(node))
        elif isinstance(node, ast.ClassDef):
            bases = ", ".join(
                [*(ast.unparse(base) for base in node.bases), *map(ast.unparse, node.keywords)]
            )
            head = _clip(f"class {node.name}({bases})" if bases else f"class {node.name}")
            methods = [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            symbols.append(f"{head}: {', '.join(methods)}" if methods else head)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            constants.extend(
                target.id
                for target in targets
                if isinstance(target, ast.Name) and _CAPS.match(target.id)
            )
    if constants:
        # One line for all constants keeps a settings-heavy module from filling the map.
        symbols.insert(0, _clip("constants: " + ", ".join(dict.fromkeys(constants))))
    return symbols


def _regex_symbols(language: str, text: str) -> list[str]:
    found: dict[int, str] = {}
    for pattern in _PATTERNS[language]:
        for match in pattern.finditer(text):
            symbol = _clip(match.group(1))
            if language == "shell":
                symbol += "()"
            line_start = text.rfind("\n", 0, match.start()) + 1
            if text[line_start : line_start + 1] in (" ", "\t"):
                # Indented declarations (Java methods) are members: shown under their type.
                symbol = "  " + symbol
            if language == "java" and symbol.split("(")[0].strip() in _JAVA_NOT_METHODS:
                continue
            # Two patterns can match the same line (a shell function, say): first one wins.
            found.setdefault(line_start, symbol)
    return [found[position] for position in sorted(found)]


def workspace_reader(root: Path, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ReadFn:
    """A ``read`` for files under ``root``: None for a missing, oversized, non-UTF-8 or
    non-regular file, and for any path that resolves outside ``root`` (a symlink, say)."""
    base = root.resolve()

    def read(path: str) -> str | None:
        target = (base / normalize_path(path)).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            return None
        try:
            if target.stat().st_size > max_bytes:
                return None
            return target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    return read
