"""The Auditor's verdict parser (strict, fence tolerated) and its budgeted request."""

from __future__ import annotations

import json
import re

import pytest

from autopack.executor.auditor import (
    AuditorIssue,
    AuditorReplyError,
    AuditorVerdict,
    Severity,
    Verdict,
    build_auditor_messages,
    parse_auditor_verdict,
)
from autopack.executor.context import ContextBudgetError, PhaseBrief
from autopack.executor.prompts import AUDITOR_SYSTEM_PROMPT


def estimate(text: str) -> int:
    return (len(text.encode()) + 2) // 3


REVISE = {
    "verdict": "revise",
    "issues": [
        {"severity": "minor", "path": None, "message": "Docstring is vague."},
        {"severity": "critical", "path": "src/a.py", "message": "Division by zero when b is 0."},
    ],
    "summary": "Works for the happy path only.",
}


def test_parses_a_bare_object() -> None:
    verdict = parse_auditor_verdict(json.dumps(REVISE))
    assert verdict == AuditorVerdict(
        verdict=Verdict.REVISE,
        issues=(
            AuditorIssue(Severity.MINOR, "Docstring is vague."),
            AuditorIssue(Severity.CRITICAL, "Division by zero when b is 0.", "src/a.py"),
        ),
        summary="Works for the happy path only.",
    )
    assert not verdict.approved
    assert verdict.issue_lines() == [
        "[critical] src/a.py: Division by zero when b is 0.",
        "[minor] Docstring is vague.",
    ]


@pytest.mark.parametrize(
    "template",
    ["```json\n{}\n```", "```JSON\n{}\n```", "```\n{}\n```", "\n\n  ```json\n{}```  \n", "{}"],
    ids=["json", "upper", "bare-fence", "whitespace", "no-fence"],
)
def test_tolerates_a_json_fence(template: str) -> None:
    reply = template.replace("{}", json.dumps({"verdict": "approve", "summary": "Good."}))
    verdict = parse_auditor_verdict(reply)
    assert verdict.approved and verdict.issues == () and verdict.summary == "Good."


def test_optional_fields_default_and_minor_issues_may_accompany_approval() -> None:
    assert parse_auditor_verdict('{"verdict": "escalate"}') == AuditorVerdict(Verdict.ESCALATE)
    verdict = parse_auditor_verdict(
        '{"verdict": "approve", "issues": [{"severity": "minor", "message": "nit"}],'
        ' "summary": null, "confidence": 0.9}'
    )
    assert verdict.issues == (AuditorIssue(Severity.MINOR, "nit"),)
    assert verdict.summary == ""


def test_to_dict_round_trips() -> None:
    verdict = parse_auditor_verdict(json.dumps(REVISE))
    assert verdict.to_dict() == REVISE
    assert parse_auditor_verdict(json.dumps(verdict.to_dict())) == verdict


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "the reply is empty"),
        ("   \n", "the reply is empty"),
        ('Here it is: {"verdict": "approve"}', "not valid JSON: Expecting value at line 1"),
        ('{"verdict": "approve"} Hope this helps!', "not valid JSON: Extra data"),
        ('Sure!\n```json\n{"verdict": "approve"}\n```', "not valid JSON"),
        ('```json\n{"verdict": "approve"}\n```\nThanks', "one ```json block"),
        ('```json\n{"verdict": "approve"}', "one ```json block"),
        ('```python\n{"verdict": "approve"}\n```', "one ```json block"),
        ('{"verdict": "approve",}', "not valid JSON: Expecting property name"),
        ("[]", "expected a JSON object, got list"),
        ('"approve"', "expected a JSON object, got str"),
        ('{"issues": []}', "no `verdict`"),
        ('{"verdict": "accept"}', "`verdict` 'accept' is not one of 'approve', 'revise'"),
        ('{"verdict": "Approve"}', "`verdict` 'Approve' is not one of"),
        ('{"verdict": true}', "`verdict` must be a string"),
        ('{"verdict": "approve", "verdict": "revise"}', "duplicated key 'verdict'"),
        ('{"verdict": "revise", "issues": {}}', "`issues` must be a list"),
        ('{"verdict": "revise", "issues": ["bad"]}', "issues[0] must be an object"),
        ('{"verdict": "revise", "issues": [{"message": "m"}]}', "issues[0] has no `severity`"),
        (
            '{"verdict": "revise", "issues": [{"severity": "blocker", "message": "m"}]}',
            "issues[0].severity 'blocker' is not one of 'minor', 'major', 'critical'",
        ),
        (
            '{"verdict": "revise", "issues": [{"severity": "major", "message": " "}]}',
            "issues[0].message must be a non-empty string",
        ),
        (
            '{"verdict": "revise", "issues": [{"severity": "major", "message": "m", "path": 3}]}',
            "issues[0].path must be a string or null",
        ),
        ('{"verdict": "approve", "summary": 3}', "`summary` must be a string"),
        ('{"verdict": "revise", "issues": []}', "'revise' needs at least one issue"),
        (
            '{"verdict": "approve", "issues": [{"severity": "major", "message": "m"}]}',
            "'approve' may only carry minor issues",
        ),
    ],
)
def test_invalid_replies_fail_with_a_precise_reason(reply: str, reason: str) -> None:
    with pytest.raises(AuditorReplyError) as caught:
        parse_auditor_verdict(reply)
    assert reason in caught.value.reason
    assert caught.value.code == "auditor_reply_invalid"
    assert caught.value.message == f"invalid auditor reply: {caught.value.reason}"


PHASE = PhaseBrief(
    name="Add subtraction",
    description="Add sub(a, b).",
    task_category="feature",
    paths=("src/calc/ops.py",),
    acceptance_criteria=("sub(5, 3) == 2",),
    test_cmd="pytest -q",
)


def file_diff(path: str, lines: int) -> str:
    body = "".join(f"+line {index} of {path}\n" for index in range(lines))
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -0,0 +1,{lines} @@\n{body}"
    )


def test_request_holds_task_criteria_tests_and_diff() -> None:
    diff = file_diff("src/calc/ops.py", 3)
    messages = build_auditor_messages(PHASE, diff, "5 passed in 0.1s", 5_000, estimate=estimate)
    assert [role for role, _ in messages] == ["system", "user"]
    assert messages[0][1] == AUDITOR_SYSTEM_PROMPT
    user = messages[1][1]
    assert re.findall(r"^## (.+)$", user, re.M) == [
        "Task",
        "Acceptance criteria",
        "Test results",
        "Diff",
        "Your reply",
    ]
    assert "Paths you may write: `src/calc/ops.py`" in user
    assert "- sub(5, 3) == 2" in user
    assert "```\n5 passed in 0.1s\n```" in user
    assert f"```diff\n{diff}```" in user
    assert estimate(user) <= 5_000


def test_a_large_diff_is_cut_by_file_and_the_rest_named() -> None:
    diff = "".join(file_diff(f"src/m{index}.py", 40) for index in range(10))
    user = build_auditor_messages(PHASE, diff, "ok", 1_500, estimate=estimate)[1][1]
    assert estimate(user) <= 1_500
    assert "+line 0 of src/m0.py" in user
    note = re.search(r"\[not shown for lack of room: (.+)\]", user)
    assert note is not None
    named = note.group(1).split(", ")
    assert named[-1] == "src/m9.py"
    shown = {f"src/m{index}.py" for index in range(10) if f"of src/m{index}.py" in user}
    cut = {name.removesuffix(" (cut)") for name in named if name.endswith(" (cut)")}
    assert shown | {name.removesuffix(" (cut)") for name in named} == {
        f"src/m{index}.py" for index in range(10)
    }
    assert len(cut) <= 1


@pytest.mark.parametrize("budget", range(400, 4_000, 97))
def test_auditor_budget_is_respected(budget: int) -> None:
    diff = "".join(file_diff(f"src/m{index}.py", 30) for index in range(6))
    tests = "\n".join(f"tests/test_{index}.py::test_x PASSED" for index in range(300))
    user = build_auditor_messages(PHASE, diff, tests, budget, estimate=estimate)[1][1]
    assert estimate(user) <= budget
    assert "## Diff" in user and "## Test results" in user


def test_diff_without_git_headers_and_with_backticks() -> None:
    diff = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-old\n+```code```\n"
    user = build_auditor_messages(PHASE, diff, "", 2_000, estimate=estimate)[1][1]
    assert f"````diff\n{diff}````" in user
    assert "(no test output)" in user
    empty = build_auditor_messages(PHASE, "  ", "ok", 2_000, estimate=estimate)[1][1]
    assert "(the change is empty)" in empty


def test_auditor_budget_too_small_is_an_error() -> None:
    with pytest.raises(ContextBudgetError):
        build_auditor_messages(PHASE, file_diff("a.py", 3), "ok", 50, estimate=estimate)
    with pytest.raises(ContextBudgetError):
        build_auditor_messages(PHASE, file_diff("a.py", 3), "ok", 0, estimate=estimate)


def test_auditor_prompt_names_the_verdict_schema() -> None:
    for word in ('"verdict"', '"approve"', '"revise"', '"escalate"', '"issues"', '"summary"'):
        assert word in AUDITOR_SYSTEM_PROMPT
    for severity in Severity:
        assert f'"{severity}"' in AUDITOR_SYSTEM_PROMPT
