"""The test gate: no new failures against the baseline, and the acceptance tests pass."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from autopack.executor.gate import GateVerdict, evaluate
from autopack.executor.testrun import Outcome, TestRun, run_tests

P, F, E, S = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED


def make_run(
    tests: dict[str, Outcome] | None,
    exit_code: int | None = None,
    *,
    timed_out: bool = False,
    cancelled: bool = False,
    command_not_found: bool = False,
) -> TestRun:
    if exit_code is None:
        exit_code = 1 if tests and any(o.failing for o in tests.values()) else 0
    return TestRun(
        command="pytest -q",
        exit_code=exit_code,
        timed_out=timed_out,
        cancelled=cancelled,
        command_not_found=command_not_found,
        duration_s=0.1,
        output="",
        output_truncated_bytes=0,
        tests=tests,
        removed_env=[],
        timeout_s=2.0,
    )


BASE = {"tests.test_a::test_one": P, "tests.test_a::test_two": P, "tests.test_b::test_old": F}


def test_pre_existing_failure_is_not_blamed() -> None:
    verdict = evaluate(make_run(BASE), make_run(dict(BASE)), [])

    assert verdict.passed, verdict.reason
    assert verdict.still_failing == ["tests.test_b::test_old"]
    assert verdict.new_failures == []
    assert "1 still failing from baseline" in verdict.reason


def test_new_failure_fails_naming_it() -> None:
    now = {**BASE, "tests.test_a::test_two": F}
    verdict = evaluate(make_run(BASE), make_run(now), [])

    assert not verdict.passed
    assert verdict.new_failures == ["tests.test_a::test_two"]
    assert "tests.test_a::test_two" in verdict.reason
    assert verdict.still_failing == ["tests.test_b::test_old"]


@pytest.mark.parametrize("baseline_outcome", [S, None])
def test_failure_of_a_test_skipped_or_absent_at_baseline_is_new(
    baseline_outcome: Outcome | None,
) -> None:
    base = dict(BASE)
    if baseline_outcome is not None:
        base["tests.test_c::test_new"] = baseline_outcome
    now = {**BASE, "tests.test_c::test_new": E}
    verdict = evaluate(make_run(base), make_run(now), [])

    assert not verdict.passed
    assert verdict.new_failures == ["tests.test_c::test_new"]


def test_fixed_and_vanished_are_reported() -> None:
    now = {"tests.test_a::test_one": P, "tests.test_b::test_old": P}
    verdict = evaluate(make_run(BASE), make_run(now), [])

    assert verdict.passed
    assert verdict.fixed == ["tests.test_b::test_old"]
    assert verdict.vanished == ["tests.test_a::test_two"]
    assert "1 fixed" in verdict.reason


def test_a_run_reporting_no_tests_fails() -> None:
    verdict = evaluate(make_run(BASE), make_run({}, exit_code=5), [])
    assert not verdict.passed
    assert "no tests" in verdict.reason


def test_nonzero_exit_without_a_failing_test_fails_when_baseline_was_clean() -> None:
    clean = {"tests.test_a::test_one": P}
    verdict = evaluate(make_run(clean), make_run(clean, exit_code=2), [])
    assert not verdict.passed
    assert "exited 2 although no test failed" in verdict.reason

    # The same exit code at baseline is not the attempt's doing.
    assert evaluate(make_run(clean, exit_code=2), make_run(clean, exit_code=2), []).passed


def test_baseline_without_results_makes_every_failure_new() -> None:
    verdict = evaluate(make_run(None, exit_code=1), make_run(BASE), [])
    assert not verdict.passed
    assert verdict.new_failures == ["tests.test_b::test_old"]


NOW = {
    "tests.test_x::test_y": P,
    "tests.test_x::test_z": F,
    "tests.test_x.TestC::test_m": P,
    "tests.test_x::test_p[1]": P,
    "tests.test_x::test_p[2.5]": P,
    "tests.test_x::test_skip": S,
    "tests.sub.test_deep::test_d": P,
}


@pytest.mark.parametrize(
    "entry",
    [
        "tests/test_x.py::test_y",
        "./tests/test_x.py::test_y",
        "tests.test_x::test_y",
        "tests/test_x.py::TestC::test_m",
        "tests.test_x.TestC::test_m",
        "tests/test_x.py::TestC",
        "tests/test_x.py::test_p",
        "tests/test_x.py::test_p[2.5]",
        "test_x.py::test_y",  # pytest's rootdir above the path the plan used
        "project/tests/test_x.py::test_y",  # rootdir below it (`cd project && pytest`)
        "tests/sub/test_deep.py",
        "tests/sub",
        "test_y",
    ],
)
def test_acceptance_entry_selects_passing_tests(entry: str) -> None:
    verdict = evaluate(make_run(NOW), make_run(NOW), [entry])
    assert verdict.passed, verdict.reason
    assert verdict.acceptance_missing == [] and verdict.acceptance_failing == []


@pytest.mark.parametrize(
    "entry",
    [
        "tests/test_x.py::test_nope",
        "tests/test_other.py::test_y",
        "tests.test_x::test_pp",
        "tests/test_x.py::test_p[3]",
        "other/test_x.py::test_y",  # a different directory, not a dropped prefix
        "tests/test_x.py::test_y::extra",
        "",
    ],
)
def test_acceptance_entry_that_selects_nothing_is_missing(entry: str) -> None:
    verdict = evaluate(make_run(NOW), make_run(NOW), [entry])
    assert not verdict.passed
    assert verdict.acceptance_missing == [entry]
    assert "acceptance tests not found" in verdict.reason


@pytest.mark.parametrize(
    ("entry", "culprits"),
    [
        ("tests/test_x.py::test_z", ["tests.test_x::test_z"]),
        ("tests/test_x.py::test_skip", ["tests.test_x::test_skip"]),
        ("tests/test_x.py", ["tests.test_x::test_skip", "tests.test_x::test_z"]),
    ],
)
def test_acceptance_entry_with_a_non_passing_test_fails(entry: str, culprits: list[str]) -> None:
    # test_z fails at baseline too: not a new failure, but acceptance still requires it to pass.
    verdict = evaluate(make_run(NOW), make_run(NOW), [entry])
    assert not verdict.passed
    assert verdict.new_failures == []
    assert verdict.acceptance_failing == [entry]
    for culprit in culprits:
        assert culprit in verdict.reason


def test_no_junit_exit_code_rules() -> None:
    ok, failed, failed_too = make_run(None, 0), make_run(None, 1), make_run(None, 2)

    assert evaluate(failed, ok, []).passed
    broke = evaluate(ok, failed, [])
    assert not broke.passed and "passed at baseline" in broke.reason
    unknown = evaluate(failed, failed_too, [])
    assert not unknown.passed
    assert "cannot be told from old ones" in unknown.reason
    assert "AUTOPACK_JUNIT_XML" in unknown.reason


def test_no_junit_cannot_check_acceptance() -> None:
    verdict = evaluate(make_run(None, 0), make_run(None, 0), ["tests/test_x.py::test_y"])
    assert not verdict.passed
    assert verdict.acceptance_missing == ["tests/test_x.py::test_y"]
    assert "cannot be checked" in verdict.reason


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"timed_out": True}, "timed out after 2 s"),
        ({"cancelled": True}, "cancelled"),
        ({"command_not_found": True}, "not found"),
    ],
)
def test_runs_that_did_not_complete_fail_with_that_reason(
    flags: dict[str, bool], words: str
) -> None:
    verdict = evaluate(make_run(BASE), make_run(None, -15, **flags), [])
    assert not verdict.passed
    assert words in verdict.reason


def test_signature_is_stable_across_ordering_and_distinguishes_failures() -> None:
    one = GateVerdict(False, "x", new_failures=["b::t", "a::t"])
    same = GateVerdict(False, "different wording", new_failures=["a::t", "b::t"])
    other = GateVerdict(False, "x", new_failures=["a::t"])

    assert one.failure_signature() == same.failure_signature()
    assert one.failure_signature() != other.failure_signature()
    assert len(one.failure_signature()) == 12
    assert int(one.failure_signature(), 16) >= 0

    # Dict order of the reports does not matter either.
    reordered = dict(reversed(list({**BASE, "tests.test_a::test_two": F}.items())))
    a = evaluate(make_run(BASE), make_run({**BASE, "tests.test_a::test_two": F}), [])
    b = evaluate(make_run(dict(reversed(list(BASE.items())))), make_run(reordered), [])
    assert a.failure_signature() == b.failure_signature()

    # Without new failures, the reason (deterministic wording) is the basis.
    timeout = evaluate(make_run(BASE), make_run(None, -15, timed_out=True), [])
    assert timeout.failure_signature() == (
        evaluate(make_run(BASE), make_run(None, -9, timed_out=True), []).failure_signature()
    )
    assert timeout.failure_signature() != a.failure_signature()


def test_reason_lists_at_most_five_names() -> None:
    now = {f"tests.test_m::test_{i}": F for i in range(8)}
    verdict = evaluate(make_run({}), make_run(now), [])
    assert len(verdict.new_failures) == 8
    assert "and 3 more" in verdict.reason


def test_end_to_end_with_a_real_pytest_project(tmp_path: Path) -> None:
    """Baseline with one known failure; an attempt that keeps it and adds one is caught."""
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (project / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n"
        "def test_known_bug():\n    assert add(0.1, 0.2) == 0.3\n"
    )
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"

    def run() -> TestRun:
        return run_tests(
            command,
            project,
            env={**env, "PYTHONPATH": str(project)},
            secret_names=[],
            timeout_s=20,
            output_limit_bytes=32_000,
            junit_dir=tmp_path / "junit",
        )

    baseline = run()
    assert baseline.exit_code == 1

    (project / "tests" / "test_calc.py").write_text(
        (project / "tests" / "test_calc.py").read_text()
        + "\ndef test_sub():\n    from calc import sub\n    assert sub(3, 1) == 2\n"
    )
    missing_function = evaluate(baseline, run(), ["tests/test_calc.py::test_sub"])
    assert not missing_function.passed
    assert missing_function.new_failures == ["tests.test_calc::test_sub"]
    assert missing_function.still_failing == ["tests.test_calc::test_known_bug"]

    (project / "calc.py").write_text(
        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
    )
    fixed = evaluate(baseline, run(), ["tests/test_calc.py::test_sub"])
    assert fixed.passed, fixed.reason
    assert fixed.still_failing == ["tests.test_calc::test_known_bug"]
