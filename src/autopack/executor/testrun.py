"""Run a project's test command in a workspace (ARCHITECTURE §5 step 6).

The command is whatever the user wrote (``pytest -q tests/``, ``make test``) and runs under
``bash -c`` (``sh -c`` where there is no bash), in the workspace, with:

* **its own session and process group**, so that on timeout or cancel the whole group is killed
  (SIGTERM, then SIGKILL after a short grace), grandchildren included. Children left running
  after the shell exits normally (``server &``) are killed the same way, so nothing a test
  started outlives the run. Limitation: a process that calls ``setsid`` itself leaves the group
  and cannot be reached this way (that needs a container or cgroup, which the deployment owns).
* **stdin from /dev/null** (a prompt fails instead of hanging) and stdout+stderr merged into one
  pipe, drained by a thread that keeps only the first and last ``output_limit_bytes / 2`` bytes:
  a test printing gigabytes costs no memory.
* **a scrubbed environment**: the base environment the caller passes, minus every name in
  ``secret_names`` (the settings marked secret) and every name that looks like a credential
  (:data:`SECRET_NAME_PATTERNS`), plus:

  - ``PYTHONDONTWRITEBYTECODE=1``: no ``__pycache__`` appears in the workspace, where it would
    show up in the phase's diff;
  - ``PYTHONUNBUFFERED=1``: a Python test killed at the timeout still shows what it printed last;
  - no ``COLUMNS`` or ``LINES``: tools size their output to them (pytest wraps and pads its lines
    to ``COLUMNS``), so the output fed back to the model — and the request a cassette is keyed
    by — would depend on the terminal Autopack was started from. Without them the output goes to
    a pipe and tools fall back to their fixed default width;
  - no ``FORCE_COLOR``, ``PY_COLORS`` or ``CLICOLOR_FORCE``: they put colour codes into output
    going to a pipe (a launcher such as npm or Playwright sets ``FORCE_COLOR``), which the model
    would be fed as escape sequences, and which would change the request a cassette is keyed by;
  - ``CI=1`` unless the base environment sets ``CI``: tools turn off prompts, spinners and colour,
    which otherwise waste the output budget fed back to the model. Baseline and attempts see the
    same value, so it cannot make a difference between them;
  - ``AUTOPACK_JUNIT_XML=<path>``: where a wrapper (``make test``, tox, a custom runner) may write
    JUnit XML so that it gets per-test results too.

* **JUnit XML**: when the command is a plain pytest invocation (:func:`looks_like_pytest`),
  ``--junitxml=<path>`` is appended. Whatever wrote the file, if it exists after the run it is
  parsed into per-test outcomes keyed ``classname::name`` (pytest: ``tests.test_x::test_y``,
  ``tests.test_x.TestC::test_m``); without it, ``tests`` is ``None`` and only the exit code counts.

Exit code 127 is how the shell reports a missing command: ``command_not_found`` lets the caller
end the run ``DONE_FAILED_ENVIRONMENT`` instead of blaming the model's change.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, ClassVar

from autopack.errors import AutopackError
from autopack.executor.sandbox import BwrapSandbox

JUNIT_ENV = "AUTOPACK_JUNIT_XML"
# The terminal's size, which tools lay their output out by, and the switches that force colour
# into output going to a pipe (see the module docstring).
_TERMINAL_NAMES = ("COLUMNS", "LINES", "FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE")

# Credential-shaped names, matched case-insensitively with fnmatch. The model providers' keys are
# the main concern (a test must never be able to spend the user's money or leak a key into the
# output fed back to the model), then the usual cloud and database credentials.
SECRET_NAME_PATTERNS: tuple[str, ...] = (
    "*API_KEY",
    "*_TOKEN",
    "*_SECRET",
    "*_SECRET_KEY",
    "*PASSWORD*",
    "DATABASE_URL",
    "AWS_*",
)

KILL_GRACE_S = 2.0
"""How long SIGTERM'd processes get to exit before the group gets SIGKILL."""

JUNIT_MAX_BYTES = 64 * 1024 * 1024
"""A larger report is not parsed (ElementTree holds the whole tree in memory)."""

_POLL_S = 0.05  # how often cancel is checked while the command runs: bounds cancel latency
_READER_JOIN_S = 1.0  # after SIGKILL, how long to wait for the output pipe to close
_READ_CHUNK = 64 * 1024
_SHELLS = ("/bin/bash", "/usr/bin/bash", "/bin/sh")

# A plain pytest invocation, optionally after `cd DIR &&`, VAR=value assignments and a project
# runner (`uv run`, `poetry run`...). Arguments may not contain anything that starts another
# command, a redirection, a substitution or a comment: appending `--junitxml` there would land in
# the wrong command (`pytest && mypy`, `pytest | tee log`), so such commands get no option and
# rely on AUTOPACK_JUNIT_XML instead.
_NOT_SHELL_SYNTAX = r"[^\s;&|<>`$#()]"
_PYTEST_COMMAND = re.compile(
    rf"""
    ^\s*
    (?:cd\s+{_NOT_SHELL_SYNTAX}+\s*&&\s*)?
    (?:[A-Za-z_][A-Za-z0-9_]*={_NOT_SHELL_SYNTAX}*\s+)*
    (?:(?:uv|poetry|pdm|hatch|pipenv)\s+run\s+)?
    (?:
        (?:{_NOT_SHELL_SYNTAX}*/)?python[0-9.]*\s+-m\s+pytest
      | (?:{_NOT_SHELL_SYNTAX}*/)?(?:pytest|py\.test)
    )
    (?=\s|$)
    [^;&|<>`$#()\n]*
    $
    """,
    re.VERBOSE,
)
# The user chose a report path, or turned the plugin off: adding ours would clash or error out.
_JUNIT_OPTION = re.compile(r"--junit-?xml\b|no:junitxml")


class TestRunError(AutopackError):
    """The test command could not be started at all (bad arguments, missing directory, no shell).

    A command that starts and fails, hangs or does not exist is not an error: it is a
    :class:`TestRun` saying so.
    """

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name
    code = "test_run_error"


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def failing(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR)


# When one test appears several times in a report (pytest reports a teardown error as a second
# <testcase> with the same name), the worst entry wins.
_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}


@dataclass(frozen=True)
class TestRun:
    """What one run of the test command did. ``output`` is head + tail of stdout and stderr."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    command: str
    exit_code: int
    """The shell's exit status; negative when it was killed by a signal (``-9`` is SIGKILL)."""
    timed_out: bool
    cancelled: bool
    command_not_found: bool
    duration_s: float
    output: str
    output_truncated_bytes: int
    tests: dict[str, Outcome] | None
    """Per-test outcomes keyed ``classname::name``; ``None`` when no JUnit report was written."""
    removed_env: list[str]
    """Names (never values) of the variables withheld from the command, sorted."""
    timeout_s: float = 0.0
    junit_path: Path | None = None
    """The report that was parsed, kept for the run's artifacts."""
    junit_problem: str | None = None
    """Why a report that exists was not used (too large, malformed)."""

    def summary(self) -> dict[str, int]:
        """Counts per outcome plus ``total``; empty when there are no per-test outcomes."""
        if self.tests is None:
            return {}
        counts = {outcome.value: 0 for outcome in Outcome}
        for outcome in self.tests.values():
            counts[outcome.value] += 1
        counts["total"] = len(self.tests)
        return counts


def run_tests(
    command: str,
    cwd: Path,
    *,
    env: Mapping[str, str],
    secret_names: Iterable[str],
    timeout_s: float,
    output_limit_bytes: int,
    junit_dir: Path,
    cancel: threading.Event | None = None,
    kill_grace_s: float = KILL_GRACE_S,
    sandbox: BwrapSandbox | None = None,
) -> TestRun:
    """Run ``command`` in ``cwd`` and report what happened; see the module docstring. With a
    ``sandbox``, only ``cwd`` and ``junit_dir`` are writable and there is no network."""
    if not command.strip():
        raise TestRunError("the test command is empty")
    if timeout_s <= 0:
        raise TestRunError(f"the test timeout must be positive, got {timeout_s}")
    if output_limit_bytes < 0:
        raise TestRunError(f"the output limit cannot be negative, got {output_limit_bytes}")
    if not cwd.is_dir():
        raise TestRunError(f"cannot run tests in {cwd}: not a directory")

    junit_dir.mkdir(parents=True, exist_ok=True)
    junit_path = (junit_dir / f"{uuid.uuid4().hex}.xml").resolve()
    child_env, removed = scrub_environment(env, secret_names)
    child_env[JUNIT_ENV] = str(junit_path)
    shell_command = add_junit_option(command, junit_path)

    capture = _HeadTail(output_limit_bytes)
    started = time.monotonic()
    try:
        argv = [_shell(), "-c", shell_command]
        if sandbox is not None:
            argv = sandbox.wrap(argv, cwd=cwd, writable=[cwd, junit_dir])
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise TestRunError(f"cannot start the test command in {cwd}: {exc}") from exc
    assert proc.stdout is not None  # stdout=PIPE
    # start_new_session makes the shell the leader of a new session and process group, whose id is
    # its pid. Until the shell is reaped (at the very end) that id cannot be reused.
    pgid = proc.pid

    exited = threading.Event()
    waiter = threading.Thread(target=_watch_exit, args=(proc.pid, exited), daemon=True)
    reader = threading.Thread(target=_drain, args=(proc.stdout, capture), daemon=True)
    waiter.start()
    reader.start()

    timed_out = cancelled = False
    deadline = started + timeout_s
    while not exited.is_set():
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        exited.wait(min(_POLL_S, remaining))

    # Whether the shell finished or is being stopped, its group gets SIGTERM: background children
    # it left behind must not outlive the run. They get the grace period to exit (the output pipe
    # closing is the sign that they did), then whatever is left gets SIGKILL.
    _signal_group(pgid, signal.SIGTERM)
    grace_end = time.monotonic() + kill_grace_s
    if not exited.is_set():
        exited.wait(kill_grace_s)
    reader.join(max(0.0, grace_end - time.monotonic()))
    _signal_group(pgid, signal.SIGKILL)
    exited.wait()
    exit_code = proc.wait()  # reaps the leader, which frees the group id
    waiter.join()
    reader.join(_READER_JOIN_S)
    duration_s = time.monotonic() - started

    output, truncated = capture.render()
    if timed_out:
        output += f"\n[autopack: timed out after {timeout_s:g} s; the process group was killed]"
    elif cancelled:
        output += "\n[autopack: cancelled; the process group was killed]"
    if reader.is_alive():
        # A process that left the group (setsid) still holds the pipe; the thread is a daemon and
        # owns the pipe, so it is simply abandoned.
        output += "\n[autopack: output capture stopped: a process outside the group holds it open]"

    tests: dict[str, Outcome] | None = None
    junit_problem: str | None = None
    parsed_path: Path | None = None
    if junit_path.is_file():
        tests, junit_problem = _parse_junit(junit_path)
        parsed_path = junit_path

    return TestRun(
        command=command,
        exit_code=exit_code,
        timed_out=timed_out,
        cancelled=cancelled,
        command_not_found=exit_code == 127 and not (timed_out or cancelled),
        duration_s=duration_s,
        output=output,
        output_truncated_bytes=truncated,
        tests=tests,
        removed_env=removed,
        timeout_s=timeout_s,
        junit_path=parsed_path,
        junit_problem=junit_problem,
    )


def scrub_environment(
    env: Mapping[str, str], secret_names: Iterable[str]
) -> tuple[dict[str, str], list[str]]:
    """The environment the test command gets, and the sorted names that were removed."""
    explicit = set(secret_names)
    kept: dict[str, str] = {}
    removed: list[str] = []
    for name, value in env.items():
        if name in explicit or _looks_secret(name):
            removed.append(name)
        else:
            kept[name] = value
    for name in _TERMINAL_NAMES:
        kept.pop(name, None)
    kept["PYTHONDONTWRITEBYTECODE"] = "1"
    kept["PYTHONUNBUFFERED"] = "1"
    kept.setdefault("CI", "1")
    return kept, sorted(removed)


def looks_like_pytest(command: str) -> bool:
    """Whether ``command`` is one plain pytest invocation that ``--junitxml`` can be appended to."""
    return _PYTEST_COMMAND.match(command) is not None


def add_junit_option(command: str, junit_path: Path) -> str:
    """``command`` with ``--junitxml=<junit_path>`` appended when that is safe, else unchanged."""
    if not looks_like_pytest(command) or _JUNIT_OPTION.search(command):
        return command
    return f"{command.rstrip()} --junitxml={shlex.quote(str(junit_path))}"


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_NAME_PATTERNS)


def _shell() -> str:
    for candidate in _SHELLS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise TestRunError("no shell to run the test command: neither bash nor /bin/sh exists")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is already empty
    except PermissionError:
        pass  # a member switched user (setuid helper): nothing more we are allowed to do


def _watch_exit(pid: int, exited: threading.Event) -> None:
    """Set ``exited`` when ``pid`` exits, without reaping it (WNOWAIT): while the leader is an
    unreaped zombie its group id stays reserved, so signalling the group cannot hit a stranger."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass  # reaped by someone else; nothing left to wait for
    finally:
        exited.set()


def _drain(stream: IO[bytes], capture: _HeadTail) -> None:
    # This thread owns the stream and closes it: closing it from another thread while a read is
    # blocked would let the descriptor number be reused under the read.
    fd = stream.fileno()
    try:
        while chunk := os.read(fd, _READ_CHUNK):
            capture.feed(chunk)
    finally:
        stream.close()


class _HeadTail:
    """Keeps the first ``limit // 2`` and the last ``limit - limit // 2`` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0
        self._lock = threading.Lock()  # render() may run while an abandoned reader still feeds

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            self._total += len(chunk)
            room = self._head_limit - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            if chunk and self._tail_limit:
                self._tail += chunk
                # Trim only once the buffer doubles, so trimming costs O(1) amortised per byte.
                if len(self._tail) > 2 * self._tail_limit:
                    del self._tail[: -self._tail_limit]

    def render(self) -> tuple[str, int]:
        """The text (head, omission marker, tail) and how many bytes were left out."""
        with self._lock:
            head = bytes(self._head)
            tail = bytes(self._tail[-self._tail_limit :]) if self._tail_limit else b""
            omitted = self._total - len(head) - len(tail)
        if omitted == 0:
            return (head + tail).decode("utf-8", errors="replace"), 0
        return (
            head.decode("utf-8", errors="replace")
            + f"\n… [{omitted} bytes omitted] …\n"
            + tail.decode("utf-8", errors="replace"),
            omitted,
        )


def _parse_junit(path: Path) -> tuple[dict[str, Outcome] | None, str | None]:
    """Per-test outcomes from a JUnit XML report, or ``None`` and why it could not be used.

    The report is written by the test runner we started, into a directory of ours, not fetched
    from anywhere; ElementTree (with the expat shipped since Python 3.7.1) also refuses entity
    expansion attacks, and the size check keeps a runaway report from filling memory.
    """
    size = path.stat().st_size
    if size > JUNIT_MAX_BYTES:
        return None, f"JUnit report is {size} bytes, over the {JUNIT_MAX_BYTES}-byte limit"
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own runner's report, size-checked above
    except ET.ParseError as exc:
        return None, f"JUnit report is not valid XML: {exc}"
    tests: dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        classname = case.get("classname", "")
        key = f"{classname}::{name}" if classname else name
        outcome = _case_outcome(case)
        previous = tests.get(key)
        if previous is None or _SEVERITY[outcome] > _SEVERITY[previous]:
            tests[key] = outcome
    return tests, None


def _case_outcome(case: ET.Element) -> Outcome:
    tags = {child.tag for child in case}
    if "error" in tags:
        return Outcome.ERROR
    if "failure" in tags:
        return Outcome.FAILED
    if "skipped" in tags:
        return Outcome.SKIPPED  # pytest reports xfail this way too: it proves nothing either way
    return Outcome.PASSED
