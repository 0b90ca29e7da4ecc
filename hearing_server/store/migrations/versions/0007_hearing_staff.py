"""hearing staff: the presiding judge's and the secretary's accounts of a hearing

Revision ID: 0007_hearing_staff
Revises: 0006_acts
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_hearing_staff"
down_revision = "0006_acts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add foreign keys to an existing table without rebuilding it.
    with op.batch_alter_table("hearings") as batch:
        batch.add_column(sa.Column("presiding_judge_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("secretary_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            "fk_hearings_presiding_judge_id", "users", ["presiding_judge_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_hearings_secretary_id", "users", ["secretary_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("hearings") as batch:
        batch.drop_constraint("fk_hearings_secretary_id", type_="foreignkey")
        batch.drop_constraint("fk_hearings_presiding_judge_id", type_="foreignkey")
        batch.drop_column("secretary_id")
        batch.drop_column("presiding_judge_id")
