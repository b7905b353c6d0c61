"""configuration reports in parts, and connectors we assumed

`station_reports` records which parts (seqNo) of a 2.0.1 NotifyReport arrived, so a report
whose earlier parts were lost reads incomplete instead of complete. `connectors.assumed` marks
a connector whose type and power are our placeholder (created because a station mentioned it),
so an operator knows to fill them in; existing connectors stay unmarked (we cannot tell).
`reconnect_count` counted a station's first connection as a reconnect: a station that ever
connected loses that one.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "station_id",
            sa.String(length=48),
            sa.ForeignKey("charging_stations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("seq_nos", sa.JSON(), nullable=False),
        sa.Column("last_seq_no", sa.Integer(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("station_id", "request_id"),
    )
    with op.batch_alter_table("connectors") as batch:
        batch.add_column(sa.Column("assumed", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE charging_stations SET reconnect_count = reconnect_count - 1 "
        "WHERE reconnect_count > 0 AND connected_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE charging_stations SET reconnect_count = reconnect_count + 1 WHERE connected_at IS NOT NULL"
    )
    with op.batch_alter_table("connectors") as batch:
        batch.drop_column("assumed")
    op.drop_table("station_reports")
