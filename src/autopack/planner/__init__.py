"""The planner: an idea and a repository become a validated plan (see docs/plans.md)."""
