"""The test gate (ARCHITECTURE §5 step 6): no new failures against the baseline, and the phase's
acceptance tests pass.

**With per-test outcomes** (JUnit XML) in the attempt's run:

* a *new failure* is a test failing (failed or error) now that passed, was skipped, or did not
  exist at baseline. A baseline without per-test outcomes counts as empty: every failure is new;
* *fixed*: failing at baseline, passing now; *still failing*: failing in both, not blamed;
* *vanished*: passed at baseline, absent now. Reported, not blamed (tests get renamed), except
  when the run reports no test at all while the baseline had some: that is a broken suite;
* a non-zero exit although no test failed (a coverage threshold, a crash after the tests) fails
  the gate unless the baseline exited non-zero too.

**Acceptance entries** select tests by pytest node id or by report key. An entry is normalised to
a list of components: a path part (``tests/test_x.py``, ``./tests/test_x.py``) loses ``.py`` and
splits on ``/``; a dotted part (``tests.test_x``, the report's form) splits on ``.``; the parts
after ``::`` follow as they are. So ``tests/test_x.py::TestC::test_m`` and
``tests.test_x.TestC::test_m`` are both ``[tests, test_x, TestC, test_m]``. A report key
``classname::name`` is ``classname`` split on ``.`` plus ``name``. The entry selects a test when
its components equal a contiguous run of the test's components, where the entry's last component
also matches a parametrised name (``test_p`` selects ``test_p[1]``). A run may start anywhere in
the test's components, so an entry relative to a subdirectory still matches when pytest's rootdir
is higher up; and leading directories of a path entry may be dropped when the run starts at the
first component, for a rootdir lower down (``cd sub && pytest``). Consequently a file, class or
directory entry selects every test in it, and a bare ``test_y`` selects every test of that name.
An entry is *missing* when it selects no test, and *failing* when any test it selects did not pass
(skipped counts as not passing: it proves nothing).

**Without per-test outcomes** only the exit code is known: exit 0 passes; a failure when the
baseline passed fails; a failure when the baseline failed as well is not comparable (new failures
cannot be told from old ones), which fails too, with a reason saying how to get per-test results.
Acceptance entries cannot be checked without per-test outcomes, which also fails the gate.

A timed-out, cancelled or not-found command fails the gate with that reason before anything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autopack.executor.testrun import JUNIT_ENV, Outcome, TestRun

_NAMES_IN_REASON = 5  # the reason stays one readable line; the lists hold everything


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reason: str
    """One line a user and a model can act on."""
    new_failures: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    still_failing: list[str] = field(default_factory=list)
    acceptance_missing: list[str] = field(default_factory=list)
    acceptance_failing: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)

    def failure_signature(self) -> str:
        """A short hash that is the same whenever the attempt failed the same way.

        Based on the sorted new failures, else on the acceptance entries at fault, else on the
        reason (whose wording depends only on exit codes and settings, never on timings or output),
        so two attempts that break the same tests get the same signature for loop detection and
        issue keys, whatever order the tests ran in.
        """
        if self.new_failures:
            basis = "new:" + "\n".join(sorted(self.new_failures))
        elif self.acceptance_missing or self.acceptance_failing:
            basis = (
                "acceptance:"
                + "\n".join(sorted(self.acceptance_missing))
                + "|"
                + "\n".join(sorted(self.acceptance_failing))
            )
        else:
            basis = "reason:" + self.reason
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:12]


def evaluate(baseline: TestRun, result: TestRun, acceptance: list[str]) -> GateVerdict:
    """Judge an attempt's test run against the baseline; see the module docstring for the rules."""
    if result.command_not_found:
        return GateVerdict(
            False,
            f"test command not found (exit 127): {result.command!r}; "
            "install the tool or fix the command in the plan",
        )
    if result.timed_out:
        return GateVerdict(False, f"tests timed out after {result.timeout_s:g} s and were killed")
    if result.cancelled:
        return GateVerdict(False, "the test run was cancelled")
    if result.tests is None:
        return _by_exit_code(baseline, result, acceptance)
    return _by_tests(baseline, result.tests, result, acceptance)


def _by_exit_code(baseline: TestRun, result: TestRun, acceptance: list[str]) -> GateVerdict:
    how = (
        f"pytest writes it by itself; other runners can write it to ${JUNIT_ENV}"
        if result.junit_problem is None
        else result.junit_problem
    )
    if acceptance:
        return GateVerdict(
            False,
            f"acceptance tests {_names(acceptance)} cannot be checked: the test command gave no "
            f"per-test results (JUnit XML; {how})",
            acceptance_missing=list(acceptance),
        )
    if result.exit_code == 0:
        return GateVerdict(True, "tests passed (exit code 0; no per-test results)")
    if baseline.exit_code == 0:
        return GateVerdict(
            False,
            f"tests failed (exit code {result.exit_code}); they passed at baseline",
        )
    return GateVerdict(
        False,
        f"tests failed (exit code {result.exit_code}) and also failed at baseline "
        f"(exit code {baseline.exit_code}); without per-test results new failures cannot be "
        f"told from old ones (JUnit XML; {how})",
    )


def _by_tests(
    baseline: TestRun,
    now: Mapping[str, Outcome],
    result: TestRun,
    acceptance: list[str],
) -> GateVerdict:
    before: Mapping[str, Outcome] = baseline.tests or {}
    new_failures = sorted(
        key
        for key, outcome in now.items()
        if outcome.failing and not (key in before and before[key].failing)
    )
    still_failing = sorted(
        key
        for key, outcome in now.items()
        if outcome.failing and key in before and before[key].failing
    )
    fixed = sorted(
        key for key, outcome in before.items() if outcome.failing and now.get(key) is Outcome.PASSED
    )
    vanished = sorted(
        key for key, outcome in before.items() if outcome is Outcome.PASSED and key not in now
    )
    missing, failing, failing_tests = _check_acceptance(acceptance, now)
    lists = {
        "new_failures": new_failures,
        "fixed": fixed,
        "still_failing": still_failing,
        "acceptance_missing": missing,
        "acceptance_failing": failing,
        "vanished": vanished,
    }

    problems: list[str] = []
    if new_failures:
        problems.append(f"new failing tests: {_names(new_failures)}")
    if missing:
        problems.append(f"acceptance tests not found: {_names(missing)}")
    if failing:
        problems.append(f"acceptance tests not passing: {_names(failing_tests)}")
    if not now and before:
        problems.append(f"the run reported no tests (baseline had {len(before)})")
    if (
        not problems
        and result.exit_code != 0
        and baseline.exit_code == 0
        and not any(outcome.failing for outcome in now.values())
    ):
        problems.append(
            f"the test command exited {result.exit_code} although no test failed "
            "(a crash or a check after the tests?); it exited 0 at baseline"
        )
    if problems:
        return GateVerdict(False, "; ".join(problems), **lists)

    passed = sum(1 for outcome in now.values() if outcome is Outcome.PASSED)
    notes = [f"{len(still_failing)} still failing from baseline"] if still_failing else []
    if fixed:
        notes.append(f"{len(fixed)} fixed")
    if vanished:
        notes.append(f"{len(vanished)} passing at baseline no longer reported")
    detail = f" ({', '.join(notes)})" if notes else ""
    return GateVerdict(True, f"no new failures: {passed} tests pass{detail}", **lists)


def _check_acceptance(
    acceptance: Iterable[str], now: Mapping[str, Outcome]
) -> tuple[list[str], list[str], list[str]]:
    """Entries that select nothing, entries that select a non-passing test, and those tests."""
    keyed = [(key, _key_components(key), outcome) for key, outcome in now.items()]
    missing: list[str] = []
    failing: list[str] = []
    failing_tests: set[str] = set()
    for entry in acceptance:
        components, droppable = _entry_components(entry)
        if not components:
            missing.append(entry)
            continue
        selected = [
            (key, outcome) for key, test, outcome in keyed if _selects(components, droppable, test)
        ]
        if not selected:
            missing.append(entry)
            continue
        bad = [key for key, outcome in selected if outcome is not Outcome.PASSED]
        if bad:
            failing.append(entry)
            failing_tests.update(bad)
    return missing, failing, sorted(failing_tests)


def _entry_components(entry: str) -> tuple[list[str], int]:
    """An acceptance entry as components, and how many leading ones are droppable directories."""
    parts = entry.strip().split("::")
    first = parts[0].strip().replace("\\", "/")
    while first.startswith("./"):
        first = first[2:]
    if first.endswith(".py") or "/" in first:
        is_file = first.endswith(".py")
        path = [piece for piece in first.removesuffix(".py").split("/") if piece]
        droppable = len(path) - 1 if is_file else len(path)
        head = path
    else:
        head = _split_dotted(first) if first else []
        droppable = 0
    return head + [part.strip() for part in parts[1:] if part.strip()], droppable


def _key_components(key: str) -> list[str]:
    classname, sep, name = key.partition("::")
    if not sep:  # a report entry without classname: the key is the bare name
        return [classname]
    return [*_split_dotted(classname), name] if classname else [name]


def _split_dotted(text: str) -> list[str]:
    # Parameter ids may contain dots (`test_p[1.5]`): only the part before `[` is dotted.
    head, bracket, params = text.partition("[")
    pieces = head.split(".")
    pieces[-1] += bracket + params
    return pieces


def _selects(entry: list[str], droppable: int, test: list[str]) -> bool:
    for dropped in range(droppable + 1):
        wanted = entry[dropped:]
        if not wanted:
            break
        # With directories dropped from the entry, the match must start at the test's first
        # component; otherwise anywhere.
        starts = range(len(test) - len(wanted) + 1) if dropped == 0 else range(1)
        for start in starts:
            if _run_matches(wanted, test[start : start + len(wanted)]):
                return True
    return False


def _run_matches(wanted: list[str], run: list[str]) -> bool:
    if len(run) != len(wanted) or run[:-1] != wanted[:-1]:
        return False
    last, candidate = wanted[-1], run[-1]
    return candidate == last or ("[" not in last and candidate.startswith(last + "["))


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_NAMES_IN_REASON])
    more = len(items) - _NAMES_IN_REASON
    return f"{shown} and {more} more" if more > 0 else shown
