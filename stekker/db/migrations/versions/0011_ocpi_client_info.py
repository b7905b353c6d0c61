"""ocpi client info

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 04:12:20.856763
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocpi_client_info",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hub_partner_id", sa.Integer(), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("party_id", sa.String(length=3), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("last_updated", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["hub_partner_id"],
            ["ocpi_partners.id"],
            name=op.f("fk_ocpi_client_info_hub_partner_id_ocpi_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpi_client_info")),
        sa.UniqueConstraint(
            "hub_partner_id",
            "country_code",
            "party_id",
            name=op.f("uq_ocpi_client_info_hub_partner_id_country_code_party_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("ocpi_client_info")
