"""problems drivers report from the public EVSE page

`problem_reports` holds what a driver reported at an EVSE (`/p/{evse_uid}/report`): the EVSE,
the kind of problem, their words and, only if they gave one, a way to reach them; the
helpdesk lists the open ones (`handled_at` null) and marks them handled.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "problem_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("evse_uid", sa.String(length=48), nullable=False),
        sa.Column(
            "station_id",
            sa.String(length=48),
            sa.ForeignKey("charging_stations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.String(length=100), nullable=True),
    )
    op.create_index("ix_problem_reports_open", "problem_reports", ["handled_at", "id"])
    op.create_index("ix_problem_reports_station_id", "problem_reports", ["station_id"])


def downgrade() -> None:
    op.drop_index("ix_problem_reports_station_id", table_name="problem_reports")
    op.drop_index("ix_problem_reports_open", table_name="problem_reports")
    op.drop_table("problem_reports")
