"""The bundled demo: ``textkit`` (a small Python library with pytest tests), a plan of two tiers
and four phases for it, and the recorded model replies that let ``autopack demo`` run offline.

The cassette is generated, never edited by hand: ``python -m autopack.demo.record`` runs the
demo with the scripted replies in ``replies/`` and records every request the executor makes.
Run it again whenever prompts or context building change (the demo test fails until you do).
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

from autopack.executor.workspace import git_environment
from autopack.plans.loader import load_plan
from autopack.plans.models import Plan

DEMO_DIR = Path(str(resources.files("autopack.demo")))
PROJECT_DIR = DEMO_DIR / "project"
PLAN_FILE = DEMO_DIR / "plan.yaml"
CASSETTE_FILE = DEMO_DIR / "cassette.jsonl"
REPLIES_DIR = DEMO_DIR / "replies"
DEMO_PROJECT = "demo"


def demo_plan(run_id: str) -> Plan:
    plan = load_plan(PLAN_FILE.read_text(encoding="utf-8"))
    return plan.model_copy(update={"run": plan.run.model_copy(update={"run_id": run_id})})


def prepare_project(dest: Path) -> Path:
    """A fresh git repository at ``dest`` holding the demo project, committed once."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        PROJECT_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    env = git_environment()
    identity = ["-c", "user.name=Autopack demo", "-c", "user.email=demo@autopack.invalid"]
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        [*identity, "commit", "-q", "--no-verify", "-m", "textkit: words and word_count"],
    ):
        subprocess.run(["git", *args], cwd=dest, env=env, check=True, capture_output=True)
    return dest
