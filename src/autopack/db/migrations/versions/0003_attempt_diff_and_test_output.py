"""attempt diff and test output

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The attempt's diff and test output (redacted and capped), kept with its row so that the
    # dashboard reads them from the database, not from the artifact files.
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("diff", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("test_output", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("test_output")
        batch_op.drop_column("diff")
