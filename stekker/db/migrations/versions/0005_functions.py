"""remote functions: firmware updates and reservations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firmware_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("location", sa.String(length=512), nullable=False),
        sa.Column("retrieve_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("install_at", stekker.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("updated_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["charging_stations.id"],
            name=op.f("fk_firmware_updates_station_id_charging_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_updates")),
    )
    with op.batch_alter_table("firmware_updates", schema=None) as batch_op:
        batch_op.create_index("ix_firmware_updates_station_ts", ["station_id", "requested_at"], unique=False)

    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("evse_number", sa.Integer(), nullable=True),
        sa.Column("token_uid", sa.String(length=255), nullable=False),
        sa.Column("expires_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["charging_stations.id"],
            name=op.f("fk_reservations_station_id_charging_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reservations_station_reservation", ["station_id", "reservation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_station_reservation")
    op.drop_table("reservations")
    with op.batch_alter_table("firmware_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_firmware_updates_station_ts")
    op.drop_table("firmware_updates")
