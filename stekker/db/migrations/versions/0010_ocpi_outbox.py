"""ocpi outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 03:56:33.810407
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocpi_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", stekker.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["ocpi_partners.id"], name=op.f("fk_ocpi_outbox_partner_id_ocpi_partners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpi_outbox")),
    )
    with op.batch_alter_table("ocpi_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_ocpi_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_ocpi_outbox_order", ["partner_id", "key", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ocpi_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_ocpi_outbox_order")
        batch_op.drop_index("ix_ocpi_outbox_due")

    op.drop_table("ocpi_outbox")
