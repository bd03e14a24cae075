"""The projects table: a git repository Autopack works on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from autopack.db.base import Base, BigIntPK, utcnow


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # A git URL or a local path; None for a project registered without a repository yet.
    repo: Mapped[str | None] = mapped_column(Text)
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    default_test_cmd: Mapped[str | None] = mapped_column(Text)
    protected_paths: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
