"""procrastinate's job queue (PostgreSQL only): what `autopack worker` processes take runs from

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 04:00:00.000000
"""

import re
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# procrastinate 3.10's schema.sql, copied as it is (tests/db/test_procrastinate_schema.py checks
# the copy against the installed library). procrastinate keeps no record of its own migrations:
# a later procrastinate release brings its migration files, applied in a new revision here.
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "procrastinate_schema.sql"


def _names(kind: str, schema: str) -> list[str]:
    return re.findall(rf"^CREATE {kind} (procrastinate_\w+)", schema, re.MULTILINE)


def upgrade() -> None:
    # SQLite never has a queue: the embedded mode executes runs in-process.
    if op.get_bind().dialect.name != "postgresql":
        return
    # sa.text, not a raw string: the schema's `%` (format strings in PL/pgSQL) must not be read
    # as driver parameters.
    op.execute(sa.text(SCHEMA_FILE.read_text(encoding="utf-8")))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = SCHEMA_FILE.read_text(encoding="utf-8")
    for table in reversed(_names("TABLE", schema)):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in _names("FUNCTION", schema):
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for type_ in _names("TYPE", schema):
        op.execute(f"DROP TYPE IF EXISTS {type_} CASCADE")
