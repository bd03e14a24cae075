"""run_tests with real subprocesses: a real pytest project, hanging and forking commands, floods of
output, planted fake secrets."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from autopack.executor import testrun as testrun_module
from autopack.executor.testrun import (
    JUNIT_ENV,
    Outcome,
    TestRun,
    TestRunError,
    add_junit_option,
    looks_like_pytest,
    run_tests,
    scrub_environment,
)

PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"


def base_env() -> dict[str, str]:
    """A small explicit environment: the venv's bin first, so the venv's pytest is found."""
    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}


def run(
    command: str,
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    secret_names: tuple[str, ...] = (),
    timeout_s: float = 20.0,
    output_limit_bytes: int = 64 * 1024,
    cancel: threading.Event | None = None,
    kill_grace_s: float = 0.5,
) -> TestRun:
    return run_tests(
        command,
        cwd,
        env=base_env() if env is None else env,
        secret_names=secret_names,
        timeout_s=timeout_s,
        output_limit_bytes=output_limit_bytes,
        junit_dir=cwd / ".junit",
        cancel=cancel,
        kill_grace_s=kill_grace_s,
    )


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process. A zombie waiting for init to reap it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_dead(pid: int) -> None:
    # Killed processes are reaped by init asynchronously; give it a moment.
    deadline = time.monotonic() + 3
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_alive(pid), f"process {pid} outlived the test run"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small real pytest project: passes, fails, errors, skips, parametrises, uses a class."""
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")  # pins rootdir here, away from Autopack's config
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "test_math.py").write_text(
        "def test_add():\n    assert 1 + 1 == 2\n\n\ndef test_sub():\n    assert 2 - 1 == 1\n"
    )
    return root


def test_passing_suite_with_junit(project: Path) -> None:
    result = run(f"{PYTEST} tests/", project)

    assert result.exit_code == 0
    assert not (result.timed_out or result.cancelled or result.command_not_found)
    assert result.tests == {
        "tests.test_math::test_add": Outcome.PASSED,
        "tests.test_math::test_sub": Outcome.PASSED,
    }
    assert result.summary() == {"passed": 2, "failed": 0, "error": 0, "skipped": 0, "total": 2}
    assert result.junit_path is not None and result.junit_path.is_file()
    assert result.junit_path.parent == (project / ".junit").resolve()
    assert "2 passed" in result.output
    assert result.output_truncated_bytes == 0
    # PYTHONDONTWRITEBYTECODE: the run leaves no bytecode in the workspace.
    assert not list(project.rglob("__pycache__"))


def test_failures_errors_skips_classes_and_params(project: Path) -> None:
    (project / "tests" / "test_mixed.py").write_text(
        "import pytest\n\n"
        "def test_fails():\n    assert 1 == 2\n\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n\n"
        "def test_errors(broken):\n    pass\n\n"
        "@pytest.mark.skip(reason='not today')\ndef test_skipped():\n    pass\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\ndef test_param(n):\n    assert n == 1\n\n"
        "class TestGroup:\n    def test_method(self):\n        pass\n"
    )
    result = run(f"{PYTEST} tests/", project)

    assert result.exit_code == 1
    assert result.tests is not None
    assert result.tests["tests.test_mixed::test_fails"] is Outcome.FAILED
    assert result.tests["tests.test_mixed::test_errors"] is Outcome.ERROR
    assert result.tests["tests.test_mixed::test_skipped"] is Outcome.SKIPPED
    assert result.tests["tests.test_mixed::test_param[1]"] is Outcome.PASSED
    assert result.tests["tests.test_mixed::test_param[2]"] is Outcome.FAILED
    assert result.tests["tests.test_mixed.TestGroup::test_method"] is Outcome.PASSED
    assert result.summary()["total"] == 8
    assert "assert 1 == 2" in result.output


def test_collection_error_is_an_error_outcome(project: Path) -> None:
    (project / "tests" / "test_broken.py").write_text("import no_such_module_anywhere\n")
    result = run(f"{PYTEST} tests/", project)

    assert result.exit_code != 0
    assert result.tests is not None
    assert Outcome.ERROR in result.tests.values()


def test_command_not_found(tmp_path: Path) -> None:
    result = run("definitely-not-a-command-xyz --flag", tmp_path)

    assert result.command_not_found
    assert result.exit_code == 127
    assert result.tests is None
    assert "not found" in result.output


def test_plain_failure_is_not_command_not_found(tmp_path: Path) -> None:
    result = run("exit 3", tmp_path)
    assert result.exit_code == 3
    assert not result.command_not_found
    assert result.tests is None
    assert result.summary() == {}


def test_hanging_command_is_killed_at_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run("echo started; sleep 30", tmp_path, timeout_s=1.0)

    assert result.timed_out
    assert not result.cancelled and not result.command_not_found
    # Killed, not waited for: the command alone would take 30 s (and not killed early either).
    assert time.monotonic() - started < 30
    assert 1.0 <= result.duration_s < 30
    assert result.exit_code < 0  # killed by a signal
    assert "started" in result.output
    assert "timed out after 1 s" in result.output


def test_background_child_does_not_outlive_the_command(tmp_path: Path) -> None:
    """The shell exits at once; the grandchild it left behind must be killed all the same."""
    result = run("sleep 1000 & echo $! > child.pid", tmp_path, timeout_s=10.0)
    child = int((tmp_path / "child.pid").read_text())

    assert result.exit_code == 0
    assert not result.timed_out
    assert result.duration_s < 3  # no waiting for the child that still held the output pipe
    assert_dead(child)


def test_children_of_a_timed_out_command_are_killed(tmp_path: Path) -> None:
    result = run(
        "sleep 1000 & echo $! > child.pid; sleep 1000 >/dev/null 2>&1 & echo $! > quiet.pid; "
        "sleep 30",
        tmp_path,
        timeout_s=1.0,
    )
    assert result.timed_out
    assert_dead(int((tmp_path / "child.pid").read_text()))
    assert_dead(int((tmp_path / "quiet.pid").read_text()))


def test_child_ignoring_sigterm_gets_sigkill(tmp_path: Path) -> None:
    # An ignored signal stays ignored across exec, so this sleep shrugs off SIGTERM.
    result = run(
        "(trap '' TERM; exec sleep 1000) & echo $! > stubborn.pid; sleep 30",
        tmp_path,
        timeout_s=1.0,
        kill_grace_s=0.3,
    )
    assert result.timed_out
    assert result.duration_s < 4
    assert_dead(int((tmp_path / "stubborn.pid").read_text()))


def test_cancel_stops_the_run(tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    try:
        result = run("sleep 1000 & echo $! > child.pid; sleep 30", tmp_path, cancel=cancel)
    finally:
        timer.cancel()

    assert result.cancelled
    assert not result.timed_out
    assert result.duration_s < 3
    assert "cancelled" in result.output
    assert_dead(int((tmp_path / "child.pid").read_text()))


def test_already_cancelled_returns_at_once(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    result = run("sleep 30", tmp_path, cancel=cancel)
    assert result.cancelled
    assert result.duration_s < 2


def test_megabytes_of_output_are_bounded_head_and_tail_kept(tmp_path: Path) -> None:
    script = tmp_path / "flood.py"
    script.write_text(
        "import sys\n"
        "sys.stdout.write('HEAD-MARKER\\n')\n"
        "for _ in range(5000):\n    sys.stdout.write('x' * 1023 + '\\n')\n"
        "sys.stderr.write('TAIL-MARKER\\n')\n"
    )
    limit = 16 * 1024
    total = len("HEAD-MARKER\n") + 5000 * 1024 + len("TAIL-MARKER\n")
    result = run(f"{shlex.quote(sys.executable)} flood.py", tmp_path, output_limit_bytes=limit)

    assert result.exit_code == 0
    assert result.output.startswith("HEAD-MARKER\n")
    assert result.output.rstrip().endswith("TAIL-MARKER")  # stderr is merged into the same capture
    assert result.output_truncated_bytes == total - limit
    assert f"[{total - limit} bytes omitted]" in result.output
    assert len(result.output.encode()) < limit + 100


def test_output_under_the_limit_is_whole(tmp_path: Path) -> None:
    result = run("printf 'abc'; printf 'def' >&2", tmp_path, output_limit_bytes=6)
    assert result.output == "abcdef"
    assert result.output_truncated_bytes == 0


def test_head_tail_buffer_edges() -> None:
    capture = testrun_module._HeadTail(4)
    for byte in b"0123456789":
        capture.feed(bytes([byte]))
    text, omitted = capture.render()
    assert omitted == 6
    assert text.startswith("01") and text.endswith("89")

    nothing = testrun_module._HeadTail(0)
    nothing.feed(b"abc")
    assert nothing.render() == ("\n… [3 bytes omitted] …\n", 3)


def test_secrets_are_removed_from_the_environment(tmp_path: Path) -> None:
    env = {
        **base_env(),
        "OPENAI_API_KEY": "sk-canary-123",
        "ANTHROPIC_API_KEY": "sk-ant-canary-234",
        "GITHUB_TOKEN": "ghp-canary-345",
        "DB_PASSWORD": "pw-canary-456",
        "AWS_ACCESS_KEY_ID": "AKIA-canary-567",
        "DATABASE_URL": "postgresql://u:canary-678@db/x",
        "MY_CUSTOM_SETTING": "custom-canary-789",
        "KEEP_ME": "visible-value",
    }
    result = run("env", tmp_path, env=env, secret_names=("MY_CUSTOM_SETTING", "NOT_SET_AT_ALL"))

    assert "canary" not in result.output
    assert "KEEP_ME=visible-value" in result.output
    assert "PYTHONDONTWRITEBYTECODE=1" in result.output
    assert "CI=1" in result.output
    assert f"{JUNIT_ENV}=" in result.output
    assert result.removed_env == [
        "ANTHROPIC_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "DATABASE_URL",
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "MY_CUSTOM_SETTING",
        "OPENAI_API_KEY",
    ]
    assert "canary" not in repr(result)


def test_scrub_environment_keeps_a_ci_value_and_matches_case_insensitively() -> None:
    kept, removed = scrub_environment(
        {"CI": "true", "my_api_key": "x", "HOME": "/h", "Session_Token": "y"}, []
    )
    assert kept["CI"] == "true"
    assert kept["HOME"] == "/h"
    assert removed == ["Session_Token", "my_api_key"]


def test_the_terminal_size_does_not_reach_the_test_command(tmp_path: Path) -> None:
    """pytest pads its lines to COLUMNS: the output fed back to the model (and the request a
    cassette is keyed by) must not depend on the terminal Autopack was started from."""
    script = 'python -c "import shutil; print(shutil.get_terminal_size())"'
    outputs = [
        run_tests(
            script,
            tmp_path,
            env={"PATH": os.environ["PATH"], **extra},
            secret_names=[],
            timeout_s=30,
            output_limit_bytes=10_000,
            junit_dir=tmp_path / "junit",
        ).output
        for extra in ({}, {"COLUMNS": "200", "LINES": "50"})
    ]
    assert outputs[0] == outputs[1]
    assert "columns=80" in outputs[1]


def test_forced_colour_does_not_reach_the_test_command(tmp_path: Path) -> None:
    """npm and Playwright set FORCE_COLOR for what they start; pytest honours it even on a pipe,
    and escape codes would reach the model (and change the request a cassette is keyed by)."""
    (tmp_path / "test_fails.py").write_text("def test_fails():\n    assert 1 == 2\n")
    outputs = [
        run_tests(
            f"{sys.executable} -m pytest -q -p no:cacheprovider",
            tmp_path,
            env={"PATH": os.environ["PATH"], **extra},
            secret_names=[],
            timeout_s=60,
            output_limit_bytes=100_000,
            junit_dir=tmp_path / "junit",
        ).output
        for extra in ({}, {"FORCE_COLOR": "1", "PY_COLORS": "1", "CLICOLOR_FORCE": "1"})
    ]
    assert "\x1b[" not in outputs[1]
    assert "assert 1 == 2" in outputs[1]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("pytest", True),
        ("pytest -q tests/", True),
        ("py.test -x", True),
        ("python -m pytest -q", True),
        ("python3.11 -m pytest tests/unit -k 'not slow'", True),
        (".venv/bin/python -m pytest", True),
        ("/usr/local/bin/pytest -q", True),
        ("cd backend && pytest -q", True),
        ("PYTHONPATH=src pytest", True),
        ("uv run pytest -q", True),
        ("poetry run pytest", True),
        ("make test", False),
        ("tox -e py311", False),
        ("pytest -q && mypy src", False),
        ("pytest | tee log.txt", False),
        ("pytest > out.txt", False),
        ("pytest; echo done", False),
        ("pytest # comment", False),
        ("pytest-watch", False),
        ("echo pytest", False),
        ("pytest -k $NAME", False),
    ],
)
def test_pytest_detection(command: str, expected: bool) -> None:
    assert looks_like_pytest(command) is expected


def test_junit_option_is_appended_quoted_and_not_duplicated(tmp_path: Path) -> None:
    path = tmp_path / "dir with space" / "r.xml"
    assert add_junit_option("pytest -q ", path) == f"pytest -q --junitxml={shlex.quote(str(path))}"
    assert add_junit_option("pytest --junitxml=mine.xml", path) == "pytest --junitxml=mine.xml"
    assert add_junit_option("pytest -p no:junitxml", path) == "pytest -p no:junitxml"
    assert add_junit_option("make test", path) == "make test"


def test_other_runners_can_write_junit_to_the_exported_path(tmp_path: Path) -> None:
    report = (
        '<testsuites><testsuite name="s">'
        '<testcase classname="suite.a" name="ok"/>'
        '<testcase classname="suite.a" name="bad"><failure message="no"/></testcase>'
        "</testsuite></testsuites>"
    )
    result = run(f"printf '%s' {shlex.quote(report)} > \"${JUNIT_ENV}\"; exit 1", tmp_path)

    assert result.tests == {"suite.a::ok": Outcome.PASSED, "suite.a::bad": Outcome.FAILED}


def test_duplicate_entries_keep_the_worst_outcome(tmp_path: Path) -> None:
    # pytest reports an error in teardown as a second <testcase> of a test that passed.
    report = (
        '<testsuite><testcase classname="m" name="t"/>'
        '<testcase classname="m" name="t"><error message="teardown"/></testcase></testsuite>'
    )
    result = run(f"printf '%s' {shlex.quote(report)} > \"${JUNIT_ENV}\"", tmp_path)
    assert result.tests == {"m::t": Outcome.ERROR}


def test_malformed_junit_means_no_per_test_results(tmp_path: Path) -> None:
    result = run(f"printf '<testsuite><testcase' > \"${JUNIT_ENV}\"", tmp_path)
    assert result.tests is None
    assert result.junit_problem is not None and "not valid XML" in result.junit_problem


def test_oversized_junit_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testrun_module, "JUNIT_MAX_BYTES", 10)
    result = run(
        f'printf \'<testsuite><testcase classname="a" name="b"/></testsuite>\' > "${JUNIT_ENV}"',
        tmp_path,
    )
    assert result.tests is None
    assert result.junit_problem is not None and "over the 10-byte limit" in result.junit_problem


def test_bad_arguments_raise(tmp_path: Path) -> None:
    with pytest.raises(TestRunError, match="not a directory"):
        run("true", tmp_path / "missing")
    with pytest.raises(TestRunError, match="positive"):
        run("true", tmp_path, timeout_s=0)
    with pytest.raises(TestRunError, match="empty"):
        run("   ", tmp_path)
