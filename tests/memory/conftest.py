"""The CLI fixtures of tests/cli, for the memory commands."""

from tests.cli.conftest import cli, runs_dir

__all__ = ["cli", "runs_dir"]
