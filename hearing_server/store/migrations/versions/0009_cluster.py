"""cluster: nodes with heartbeats and a lease per live hearing

Revision ID: c15_0006_cluster
Revises: 0008_judge_keys
Create Date: 2026-12-04 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c15_0006_cluster"
down_revision = "0008_judge_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("public_url", sa.String(length=500), nullable=False),
        sa.Column("internal_url", sa.String(length=500), nullable=False),
        sa.Column("ice_addresses", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("load", sa.Float(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cluster_nodes_heartbeat_at", "cluster_nodes", ["heartbeat_at"])
    op.create_table(
        "hearing_leases",
        sa.Column("hearing_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["hearing_id"], ["hearings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["cluster_nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hearing_id"),
    )
    op.create_index("ix_hearing_leases_node_id", "hearing_leases", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_hearing_leases_node_id", table_name="hearing_leases")
    op.drop_table("hearing_leases")
    op.drop_index("ix_cluster_nodes_heartbeat_at", table_name="cluster_nodes")
    op.drop_table("cluster_nodes")
