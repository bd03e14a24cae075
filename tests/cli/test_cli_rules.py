"""``autopack rules list|approve|retire`` through the rules service, on both dialects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from autopack.projects.models import Project
from autopack.rules.models import Rule, RuleStage
from autopack.rules.schemas import RuleRead
from autopack.runs.schemas import Page
from tests.cli.support import Invoke, assert_clean_failure

EARLIER = datetime(2026, 1, 1, tzinfo=UTC)
LONG_TEXT = (
    "Write a test with every change, and run the whole suite before you commit: a change that "
    "breaks another module's tests is not done, however small it looks."
)


def _rules(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Four rules: two of project `alpha`, one of `beta`, one global; their ids by label."""
    with sessions() as session:
        alpha = Project(name="alpha", repo="/srv/alpha")
        beta = Project(name="beta", repo=None)
        session.add_all([alpha, beta])
        session.flush()
        rows = {
            "alpha-candidate": Rule(
                project_pk=alpha.id,
                scope_pattern="src/**",
                task_categories=["feature", "bugfix"],
                text=LONG_TEXT,
                stage=RuleStage.CANDIDATE,
                evidence_issue_keys=["tests:test_x"],
                hit_count=3,
                miss_count=1,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "alpha-active": Rule(
                project_pk=alpha.id,
                text="Keep functions short.",
                stage=RuleStage.ACTIVE,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "beta-retired": Rule(
                project_pk=beta.id,
                text="Old advice.",
                stage=RuleStage.RETIRED,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
            "global-candidate": Rule(
                project_pk=None,
                text="Never edit generated files.",
                stage=RuleStage.CANDIDATE,
                created_at=EARLIER,
                updated_at=EARLIER,
            ),
        }
        for rule in rows.values():
            session.add(rule)
            session.flush()
        session.commit()
        return {label: rule.id for label, rule in rows.items()}


def _stage(sessions: sessionmaker[Session], rule_id: int) -> tuple[RuleStage, datetime]:
    with sessions() as session:
        rule = session.get(Rule, rule_id)
        assert rule is not None
        return RuleStage(rule.stage), rule.updated_at


def _row(stdout: str, rule_id: int) -> str:
    return next(line for line in stdout.splitlines() if line.strip().startswith(f"{rule_id} "))


def test_list_shows_the_rules_newest_first(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    assert cli("rules", "list").stdout.strip() == "No rules."
    ids = _rules(session_factory)
    listed = cli("rules", "list")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    header = lines[0]
    for column in ("ID", "STAGE", "PROJECT", "CATEGORIES", "SCOPE", "HITS/MISSES", "TEXT"):
        assert column in header, header
    rows = [line.split()[0] for line in lines[1:-1]]
    assert rows == [str(i) for i in sorted(ids.values(), reverse=True)]
    assert lines[-1].strip() == "4 rules"

    candidate = _row(listed.stdout, ids["alpha-candidate"])
    for cell in ("candidate", "alpha", "feature, bugfix", "src/**", "3/1", "Write a test with"):
        assert cell in candidate, candidate
    assert LONG_TEXT not in listed.stdout  # shortened in the table
    assert "…" in candidate
    global_rule = _row(listed.stdout, ids["global-candidate"])
    for cell in ("all projects", "any", "any path", "0/0", "Never edit generated files."):
        assert cell in global_rule, global_rule


def test_list_filters_by_stage_and_project(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)

    def listed_ids(*args: str) -> set[int]:
        result = cli("rules", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return {item["id"] for item in json.loads(result.stdout)["items"]}

    assert listed_ids("--stage", "candidate") == {ids["alpha-candidate"], ids["global-candidate"]}
    assert listed_ids("--stage", "ACTIVE") == {ids["alpha-active"]}
    assert listed_ids("--project", "alpha") == {ids["alpha-candidate"], ids["alpha-active"]}
    assert listed_ids("--project", "beta", "--stage", "retired") == {ids["beta-retired"]}
    assert listed_ids("--project", "beta", "--stage", "active") == set()
    assert listed_ids("--project", "nobody") == set()

    table = cli("rules", "list", "--stage", "retired")
    assert table.exit_code == 0, table.output
    assert "Old advice." in table.stdout and "Keep functions short." not in table.stdout
    assert cli("rules", "list", "--stage", "active", "--project", "beta").stdout.strip() == (
        "No rules."
    )


def test_every_stage_is_a_choice(cli: Invoke) -> None:
    for stage in RuleStage:
        result = cli("rules", "list", "--stage", stage.value)
        assert result.exit_code == 0, result.output
    unknown = cli("rules", "list", "--stage", "dormant")
    assert unknown.exit_code == 2
    help_text = cli("rules", "list", "--help").stdout
    assert all(stage.value in help_text for stage in RuleStage)


def test_limit_says_how_many_match_in_all(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)
    listed = cli("rules", "list", "--limit", "2")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines[1:-1]] == [
        str(i) for i in sorted(ids.values(), reverse=True)[:2]
    ]
    assert lines[-1].strip() == "2 of 4 rules"
    assert cli("rules", "list", "--limit", "0").exit_code == 2


def test_json_is_the_api_page_with_the_full_text(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)
    result = cli("rules", "list", "--json", "--limit", "3")
    assert result.exit_code == 0, result.output
    page = Page[RuleRead].model_validate_json(result.stdout)
    assert (page.total, page.limit, page.offset) == (4, 3, 0)
    assert [item.id for item in page.items] == sorted(ids.values(), reverse=True)[:3]
    data = json.loads(cli("rules", "list", "--json").stdout)
    assert (data["total"], data["limit"], len(data["items"])) == (4, 50, 4)
    candidate = next(item for item in data["items"] if item["id"] == ids["alpha-candidate"])
    assert candidate["text"] == LONG_TEXT
    assert candidate["project"] == "alpha"
    assert candidate["stage"] == "candidate"
    assert candidate["task_categories"] == ["feature", "bugfix"]
    assert candidate["evidence_issue_keys"] == ["tests:test_x"]
    assert (candidate["hit_count"], candidate["miss_count"]) == (3, 1)
    global_rule = next(item for item in data["items"] if item["id"] == ids["global-candidate"])
    assert global_rule["project"] is None


def test_approve_then_retire(cli: Invoke, session_factory: sessionmaker[Session]) -> None:
    ids = _rules(session_factory)
    rule_id = ids["alpha-candidate"]

    approved = cli("rules", "approve", str(rule_id), "--reason", "it keeps coming back")
    assert approved.exit_code == 0, approved.output
    assert f"rule {rule_id} is now active" in approved.stdout
    stage, updated_at = _stage(session_factory, rule_id)
    assert stage == RuleStage.ACTIVE
    assert updated_at > EARLIER

    retired = cli("rules", "retire", str(rule_id))
    assert retired.exit_code == 0, retired.output
    assert f"rule {rule_id} is now retired" in retired.stdout
    assert _stage(session_factory, rule_id)[0] == RuleStage.RETIRED

    # A candidate can be retired directly; the others are left alone.
    assert cli("rules", "retire", str(ids["global-candidate"])).exit_code == 0
    assert _stage(session_factory, ids["global-candidate"])[0] == RuleStage.RETIRED
    assert _stage(session_factory, ids["alpha-active"])[0] == RuleStage.ACTIVE


def test_a_refused_change_is_an_error_and_changes_nothing(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    ids = _rules(session_factory)
    retired_id = ids["beta-retired"]
    refused = cli("rules", "approve", str(retired_id))
    assert_clean_failure(refused)
    assert refused.stderr.startswith("error: ")
    assert f"rule {retired_id} cannot go from retired to active" in refused.stderr
    assert _stage(session_factory, retired_id) == (RuleStage.RETIRED, EARLIER)

    again = cli("rules", "retire", str(retired_id), "--reason", "twice")
    assert_clean_failure(again)
    assert "from retired to retired" in again.stderr

    active = cli("rules", "approve", str(ids["alpha-active"]))
    assert_clean_failure(active)
    assert "from active to active" in active.stderr


def test_unknown_or_bad_ids_and_reasons(
    cli: Invoke, session_factory: sessionmaker[Session]
) -> None:
    for command in ("approve", "retire"):
        missing = cli("rules", command, "999")
        assert_clean_failure(missing)
        assert "error: rule 999 does not exist" in missing.stderr
        assert cli("rules", command, "0").exit_code == 2
        assert cli("rules", command, str(2**63)).exit_code == 2
        assert cli("rules", command, "abc").exit_code == 2
    rule_id = _rules(session_factory)["alpha-candidate"]
    too_long = cli("rules", "approve", str(rule_id), "--reason", "x" * 2001)
    assert_clean_failure(too_long)
    assert "--reason" in too_long.stderr
    assert _stage(session_factory, rule_id)[0] == RuleStage.CANDIDATE
