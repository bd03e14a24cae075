"""The executor: runs a plan's phases in an isolated workspace, under governance and budgets."""
