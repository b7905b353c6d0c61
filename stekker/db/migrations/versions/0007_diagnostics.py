"""diagnostics and log uploads

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _when() -> stekker.db.base.UTCDateTime:
    return stekker.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "diagnostics_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("log_type", sa.String(length=20), nullable=False),
        sa.Column("window_start", _when(), nullable=True),
        sa.Column("window_stop", _when(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("station_status", sa.String(length=40), nullable=True),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("receiving_since", _when(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("requested_at", _when(), nullable=False),
        sa.Column("answered_at", _when(), nullable=True),
        sa.Column("status_at", _when(), nullable=True),
        sa.Column("uploaded_at", _when(), nullable=True),
        sa.Column("closed_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["charging_stations.id"],
            name=op.f("fk_diagnostics_requests_station_id_charging_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostics_requests")),
    )
    with op.batch_alter_table("diagnostics_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_diagnostics_requests_state"), ["state"], unique=False)
        batch_op.create_index("ix_diagnostics_requests_station_id", ["station_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("diagnostics_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnostics_requests_station_id")
        batch_op.drop_index(batch_op.f("ix_diagnostics_requests_state"))
    op.drop_table("diagnostics_requests")
