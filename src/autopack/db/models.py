"""Imports every domain's tables so that ``Base.metadata`` is complete (Alembic, drift checks)."""

from autopack.approvals.models import Approval
from autopack.auth.models import ApiKey
from autopack.db.base import Base
from autopack.events.models import Event
from autopack.issues.models import Issue, IssueOccurrence
from autopack.projects.models import Project
from autopack.rules.models import Rule
from autopack.runs.models import Attempt, Phase, Run, Tier
from autopack.usage.models import LlmCall

__all__ = [
    "ApiKey",
    "Approval",
    "Attempt",
    "Base",
    "Event",
    "Issue",
    "IssueOccurrence",
    "LlmCall",
    "Phase",
    "Project",
    "Rule",
    "Run",
    "Tier",
]
