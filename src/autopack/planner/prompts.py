"""The planner's prompts: the plan format it must write, the idea, the repository, and the repair
round that feeds the validator's problems back.

The format taught here is the one ``docs/plans.md`` documents and ``autopack.plans`` validates; a
change to either must be made here too, or the model is taught a plan that is then rejected. The
example plan is checked by the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from autopack.executor.context import fence
from autopack.llm.provider import Message
from autopack.planner.repo import TestSetup

# Small phases are what the Builder does well: one reply, a few files, tests that pin the change.
MAX_PHASES_HINT = 12

EXAMPLE_PLAN = """\
run:
  run_id: add-csv-export
  goal: Export reports as CSV files from the command line
tiers:
  - tier_id: core
    name: CSV writer
    description: The writer and its tests
  - tier_id: cli
    name: Command line
    description: Expose the writer as a command
phases:
  - phase_id: csv-writer
    tier_id: core
    name: CSV writer module
    description: >-
      Add write_csv(reports, path) to src/reports/csv_export.py, writing a header row and one
      row per report, with the standard library's csv module.
    task_category: feature
    complexity: low
    scope:
      paths: [src/reports/csv_export.py, tests/test_csv_export.py]
      read_only_context: [src/reports/models.py]
      acceptance_criteria:
        - write_csv writes a header row and one row per report
        - Values holding commas or quotes are quoted, and tests/test_csv_export.py covers them
      test_cmd: python -m pytest -q
  - phase_id: export-command
    tier_id: cli
    name: export command
    description: >-
      Add an `export` subcommand to src/reports/cli.py that writes the reports to the path given
      with --output, using write_csv.
    task_category: feature
    complexity: medium
    scope:
      paths: [src/reports/cli.py, tests/test_cli.py]
      read_only_context: [src/reports/csv_export.py]
      acceptance_criteria:
        - "`reports export --output out.csv` writes out.csv and exits 0"
        - A missing --output is a usage error with exit status 2
      test_cmd: python -m pytest -q
"""

PLANNER_SYSTEM_PROMPT = f"""\
You are the Planner of Autopack. You turn an idea into a plan: ordered tiers of small phases, \
each one unit of coding work that Autopack's Builder model will carry out in the repository, \
one phase at a time, with no human in the loop. The user message gives the idea, a map of the \
repository (its files and their top-level symbols) and the test setup that was detected.

A plan is one YAML document with exactly these fields (any other field is rejected):

project: ...              # only when the user message says so
run:                      # optional
  run_id: ...             # identifier: letters, digits, `.`, `_`, `-`; a letter or digit first
  goal: ...               # the idea, in one sentence
tiers:                    # at least one; tiers run in the order listed
  - tier_id: ...          # identifier, unique in the plan
    name: ...             # short human-readable name
    description: ...      # what the tier achieves
phases:                   # at least one; within a tier, phases run in the order listed
  - phase_id: ...         # identifier, unique in the plan
    tier_id: ...          # one of the tiers above; every tier needs at least one phase
    name: ...
    description: ...      # the work to do, for the Builder: specific files, functions, behaviour
    task_category: ...    # feature_scaffolding, feature, bugfix, refactor, tests, docs, ...
    complexity: ...       # low | medium | high
    scope:
      paths: [...]        # files (or directories) the phase may write, relative to the root
      read_only_context: [...]  # existing files the Builder should read; never written
      acceptance_criteria: [...]  # what must be true when the phase is done, each checkable
      test_cmd: ...       # command run from the repository root; exit 0 means the tests pass

Example:

{fence(EXAMPLE_PLAN, "yaml")}

Rules:
- Make phases small: one focused change the Builder can make in one reply, usually one to four \
files under scope.paths. Prefer more small phases over a few large ones, and at most \
{MAX_PHASES_HINT} phases. Use one tier unless the work falls into clear stages.
- Order matters: a phase may rely on the phases before it, never on those after it. Put the \
tests of a change in the same phase as the change.
- scope.paths lists every file the phase writes, existing or to be created. Spell existing paths \
exactly as the repository map does; new files go where the repository's layout says they belong.
- read_only_context lists only files that exist in the repository map.
- Every phase has acceptance criteria a reviewer can check, and a test_cmd: use the detected \
test command unless the phase needs another. Tests that fail before the run are not blamed on it.
- complexity: low for a local change, medium for a change across a few files, high for subtle or \
wide changes (high phases are also reviewed by the Auditor). Use a task_category such as \
security, auth, database_migration or payments when the work is of that kind: such phases are \
reviewed too.
- Leave out budgets (token_cap, cost_cap_usd, max_phases, ...), models, indexes and fields the \
format above does not show, unless the idea asks for them.
- Reply with exactly one fenced ```yaml block holding the whole plan, and nothing else.
"""


def planner_messages(
    idea: str,
    repo_map: str,
    tests: Sequence[TestSetup],
    *,
    project: str | None = None,
) -> tuple[Message, ...]:
    """The first call: the system prompt and the idea with the repository's map and tests."""
    return (
        Message("system", PLANNER_SYSTEM_PROMPT),
        Message("user", planner_user_message(idea, repo_map, tests, project=project)),
    )


def planner_user_message(
    idea: str, repo_map: str, tests: Sequence[TestSetup], *, project: str | None = None
) -> str:
    sections = [
        f"## The idea\n\n{idea.strip()}",
        f"## Project\n\n{_project_line(project)}",
        f"## Repository map\n\n{_map_text(repo_map)}",
        f"## Test setup\n\n{_tests_text(tests)}",
        "## Reply\n\nThe whole plan, in exactly one fenced ```yaml block.",
    ]
    return "\n\n".join(sections) + "\n"


def repair_messages(
    first: Sequence[Message], reply: str, problems: Sequence[dict[str, str]]
) -> tuple[Message, ...]:
    """The repair round: the first conversation, the invalid reply, and what was wrong with it."""
    return (*first, Message("assistant", reply), Message("user", repair_user_message(problems)))


def repair_user_message(problems: Sequence[dict[str, str]]) -> str:
    count = len(problems)
    listed = "\n".join(f"- {problem['loc']}: {problem['message']}" for problem in problems)
    return (
        f"Your plan is not valid. Autopack's validator found {count} "
        f"problem{'s' if count != 1 else ''}, each given as `location: problem`. A location is a "
        "path into the plan, counting list items from 0 (`phases[1].scope.paths`), a line and "
        "column of your YAML, or `(reply)` for the reply as a whole:\n\n"
        f"{listed}\n\n"
        "Reply with the whole corrected plan, in exactly one fenced ```yaml block. Fix every "
        "problem listed and keep the rest of the plan as it was.\n"
    )


def _project_line(project: str | None) -> str:
    if project is None:
        return "Leave `project` out of the plan: the run's project is chosen when it is created."
    return (
        f"The plan is for the registered project `{project}`: write `project: {project}` as "
        "the plan's first line."
    )


def _map_text(repo_map: str) -> str:
    if not repo_map:
        return "(the repository has no files yet: the plan creates everything)"
    return "Files, with their top-level symbols indented under them:\n\n" + fence(repo_map)


def _tests_text(tests: Sequence[TestSetup]) -> str:
    if not tests:
        return (
            "No test setup was detected. Choose a test_cmd the repository's language supports, "
            "and make the first phase add the tests and their configuration."
        )
    lines = [f"- `{setup.command}` (from {', '.join(setup.evidence)})" for setup in tests]
    return "Detected test commands, most likely first:\n\n" + "\n".join(lines)
