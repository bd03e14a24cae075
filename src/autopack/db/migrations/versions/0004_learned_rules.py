"""learned rules: issue key, runs, confirmations, misses in a row, stage reason

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rules learned from failures: one per (project, issue key), with the runs that fixed the
    # failure and the counts that move the rule between stages. Existing (hand-made) rules get
    # no key, no runs and zero counts.
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issue_key", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("learned_from_runs", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("confirmations", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("misses_in_a_row", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("stage_reason", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_rules_project_pk"), ["project_pk", "issue_key"]
        )
    # The defaults were for the rows that existed; new rows get theirs from the application.
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.alter_column("learned_from_runs", server_default=None)
        batch_op.alter_column("confirmations", server_default=None)
        batch_op.alter_column("misses_in_a_row", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("rules", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_rules_project_pk"), type_="unique")
        batch_op.drop_column("stage_reason")
        batch_op.drop_column("misses_in_a_row")
        batch_op.drop_column("confirmations")
        batch_op.drop_column("learned_from_runs")
        batch_op.drop_column("issue_key")
