"""Reading the deployment files as Docker and Compose read them, for the deploy tests.

There is no Docker engine where the tests run, so these helpers stand in for the parts of it the
tests need, each following the real implementation's rules:

- ``DockerIgnore``: ``.dockerignore`` as Docker applies it (moby/patternmatcher and its
  ``ignorefile`` reader): patterns are matched from the root of the build context, not at any
  depth as in ``.gitignore``; a pattern that matches a directory excludes everything under it;
  the last matching line wins, ``!`` lines re-include.
- ``parse_dockerfile``: instructions (continuation lines joined, comments dropped) grouped into
  stages, with their exec-form (JSON) arguments.
- ``interpolate``: Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
FRONTEND_DOCKERFILE = REPO / "Dockerfile.frontend"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
INIT_DB_SQL = REPO / "scripts" / "init-db.sql"

# --- .dockerignore -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """One cleaned pattern, compiled as patternmatcher's ``Pattern.compile`` does."""

    text: str
    exclusion: bool
    kind: str  # exact | prefix | suffix | regexp
    regexp: re.Pattern[str] | None

    @classmethod
    def compile(cls, text: str, exclusion: bool) -> _Pattern:
        regex = "^"
        kind = "exact"
        i = 0
        pos = 0
        while pos < len(text):
            ch = text[pos]
            pos += 1
            if ch == "*":
                if pos < len(text) and text[pos] == "*":
                    pos += 1
                    # `**/` is `**`: the slash is eaten.
                    if pos < len(text) and text[pos] == "/":
                        pos += 1
                    if pos == len(text):
                        # `**` at the end accepts everything below.
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            regex += ".*"
                            kind = "regexp"
                    else:
                        regex += "(.*/)?"
                        kind = "regexp"
                    if i == 0:
                        kind = "suffix"
                else:
                    regex += "[^/]*"
                    kind = "regexp"
            elif ch == "?":
                regex += "[^/]"
                kind = "regexp"
            elif ch in ".+()|{}$":
                regex += "\\" + ch
            elif ch == "\\":
                if pos < len(text):
                    regex += "\\" + text[pos]
                    pos += 1
                    kind = "regexp"
                else:
                    regex += "\\\\"
            elif ch in "[]":
                regex += ch
                kind = "regexp"
            else:
                regex += ch
            i += 1
        compiled = re.compile(regex + "$") if kind == "regexp" else None
        return cls(text=text, exclusion=exclusion, kind=kind, regexp=compiled)

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            # `**/foo` matches `foo` itself.
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regexp is not None
        return self.regexp.match(path) is not None


def read_ignore_lines(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as ``ignorefile.ReadAll`` returns them."""
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        line = raw.removeprefix("\ufeff") if number == 0 else raw
        # Only a line that starts with `#` is a comment (no trailing comments).
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if line.startswith("//"):  # normpath keeps two leading slashes; Go's Clean does not
                line = "/" + line.lstrip("/")
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append("!" + line if invert else line)
    return patterns


class DockerIgnore:
    """Which paths of a build context Docker leaves out (``MatchesOrParentMatches``)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[_Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = posixpath.normpath(text)
            exclusion = text.startswith("!")
            if exclusion:
                text = text[1:]
                if not text:
                    raise ValueError('illegal exclusion pattern: "!"')
            self.patterns.append(_Pattern.compile(text, exclusion))

    @classmethod
    def from_text(cls, text: str) -> DockerIgnore:
        return cls(read_ignore_lines(text))

    @classmethod
    def from_file(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        return cls.from_text(path.read_text(encoding="utf-8"))

    @property
    def has_exclusions(self) -> bool:
        return any(pattern.exclusion for pattern in self.patterns)

    def excludes(self, path: str) -> bool:
        """True when the context path (slash-separated, relative) is left out."""
        path = posixpath.normpath(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            # An inclusion that already matched, or an exclusion with nothing to undo, is skipped.
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit:
                for i in range(len(parent_dirs)):
                    if pattern.match("/".join(parent_dirs[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched


def context_files(root: Path, ignore: DockerIgnore) -> set[str]:
    """The files (and symlinks) of the build context rooted at ``root``: what ``docker build``
    sends. Excluded directories are not entered unless a ``!`` pattern could re-include
    something below them (as BuildKit does)."""
    found: set[str] = set()
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if not ignore.has_exclusions:
            dirnames[:] = [name for name in dirnames if not ignore.excludes(prefix + name)]
        for name in filenames:
            rel = prefix + name
            if not ignore.excludes(rel):
                found.add(rel)
    return found


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON (exec form) arguments, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value)
        return value

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """``--name=value`` flags in front of the arguments (COPY, HEALTHCHECK), and the rest."""
        flags: dict[str, str] = {}
        rest = self.args.strip()
        while rest.startswith("--"):
            word, _, rest = rest.partition(" ")
            name, _, value = word[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        return flags, rest


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The ENV values of this stage (``KEY=value`` pairs, possibly several per line)."""
        values: dict[str, str] = {}
        for item in self.all("ENV"):
            words = shlex.split(item.args)
            if words and "=" not in words[0]:  # legacy `ENV KEY value`
                values[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                key, _, value = word.partition("=")
                values[key] = value
        return values


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instructions with their continuation lines joined; comment lines dropped (also inside a
    continued instruction, as Docker does)."""
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            continue
        if not current and not stripped:
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        yield start, " ".join(part for part in current if part)
        current = []
    if current:
        yield start, " ".join(part for part in current if part)


def parse_dockerfile(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            words = [word for word in words if not word.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
            continue
        assert stages, f"{path.name}:{line}: {keyword} before any FROM"
        stages[-1].instructions.append(Instruction(keyword, args.strip(), line))
    return stages


def stage_named(stages: list[Stage], name: str) -> Stage:
    for stage in stages:
        if stage.name == name:
            return stage
    raise AssertionError(f"no stage named {name!r} (stages: {[s.name for s in stages]})")


def base_image(stages: list[Stage], stage: Stage) -> str:
    """The image a stage starts from, following FROM <earlier stage> back to a real image."""
    names = {s.name: s for s in stages if s.name}
    seen = stage
    while seen.base in names:
        seen = names[seen.base]
    return seen.base


def copy_sources(stage: Stage) -> list[str]:
    """Context paths the stage's COPY/ADD lines read (COPY --from=... reads a stage, not the
    context, and is left out)."""
    sources: list[str] = []
    for item in stage.instructions:
        if item.keyword not in ("COPY", "ADD"):
            continue
        flags, rest = item.flags_and_rest()
        if "from" in flags:
            continue
        words = json.loads(rest) if rest.startswith("[") else rest.split()
        sources += words[:-1]
    return sources


# --- Compose -----------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


class InterpolationError(Exception):
    """Compose's refusal of a ``${VAR:?message}`` whose variable is unset or empty."""


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """A string as Compose interpolates it from ``env`` (the shell environment and ``.env``)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["plain"]
        current = env.get(name)
        op = match["op"]
        arg = match["arg"] or ""
        if op in (":-", "-"):
            missing = current is None or (op == ":-" and current == "")
            return arg if missing else str(current)
        if op in (":?", "?"):
            missing = current is None or (op == ":?" and current == "")
            if missing:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return str(current)
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def interpolate_all(data: Any, env: Mapping[str, str]) -> Any:
    """Every string of a loaded compose file, interpolated."""
    if isinstance(data, str):
        return interpolate(data, env)
    if isinstance(data, list):
        return [interpolate_all(item, env) for item in data]
    if isinstance(data, dict):
        return {key: interpolate_all(value, env) for key, value in data.items()}
    return data


def interpolated_names(data: Any) -> dict[str, set[str]]:
    """Variable name -> the defaults it is given (``""`` for none) in every ``${...}``."""
    found: dict[str, set[str]] = {}
    if isinstance(data, str):
        for match in _INTERPOLATION.finditer(data):
            name = match["braced"] or match["plain"]
            if name:
                default = match["arg"] if match["op"] in (":-", "-") else ""
                found.setdefault(name, set()).add(default or "")
    elif isinstance(data, list | dict):
        items = data.values() if isinstance(data, dict) else data
        for item in items:
            for name, defaults in interpolated_names(item).items():
                found.setdefault(name, set()).update(defaults)
    return found


def read_env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values


def healthcheck_argv(test: Any) -> tuple[str, list[str]]:
    """A compose/Dockerfile health check test as (form, words): ``CMD`` with the argv, or
    ``CMD-SHELL`` with the one shell command string."""
    if isinstance(test, str):
        return "CMD-SHELL", [test]
    assert isinstance(test, list) and test, test
    form, *rest = test
    assert form in ("CMD", "CMD-SHELL", "NONE"), test
    return form, [str(word) for word in rest]


_PUNCTUATION = set("();<>|&")


def shell_command_words(script: str) -> list[str]:
    """The words in command position of a simple shell script: the first word, and each word
    after a control operator (``&&``, ``||``, ``;``, ``|``). Redirections (``>&3``, ``<>``) and
    their targets are skipped."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    expect_command = True
    skip_target = False
    for token in lexer:
        if set(token) <= _PUNCTUATION:
            if "<" in token or ">" in token:
                skip_target = True  # a redirection: the next word is its target
            else:
                expect_command = True
            continue
        if skip_target:
            skip_target = False
            continue
        if expect_command:
            words.append(token)
            expect_command = False
    return words
