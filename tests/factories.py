"""Small builders of test data, going through the same services the API uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from autopack.plans.loader import validate_plan
from autopack.runs.models import Run
from autopack.runs.service import create_run

V7_BODY: dict[str, Any] = {
    "run": {"run_id": "my-first-run", "safety_profile": "normal", "run_scope": "incremental"},
    "tiers": [
        {
            "tier_id": "T1",
            "tier_index": 0,
            "name": "My First Tier",
            "description": "Testing Autopack",
        }
    ],
    "phases": [
        {
            "phase_id": "P1",
            "phase_index": 0,
            "tier_id": "T1",
            "name": "My First Phase",
            "description": "Testing phase creation",
            "task_category": "feature_scaffolding",
            "complexity": "low",
            "builder_mode": "compose",
        }
    ],
}


def plan_body(run_id: str = "run-1", tiers: int = 2, phases_per_tier: int = 2) -> dict[str, Any]:
    return {
        "run": {"run_id": run_id, "goal": "test", "token_cap": 100_000},
        "tiers": [{"tier_id": f"T{t}", "name": f"Tier {t}"} for t in range(1, tiers + 1)],
        "phases": [
            {
                "phase_id": f"P{t}{p}",
                "tier_id": f"T{t}",
                "name": f"Phase {t}.{p}",
                "scope": {"paths": [f"src/mod{t}{p}.py"], "test_cmd": "pytest -q"},
            }
            for t in range(1, tiers + 1)
            for p in range(1, phases_per_tier + 1)
        ],
    }


def make_run(session: Session, body: dict[str, Any] | None = None) -> Run:
    return create_run(session, validate_plan(body or plan_body()))
