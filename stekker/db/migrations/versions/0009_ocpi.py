"""ocpi partners and tokens

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 03:50:26.829825
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocpi_partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("party_id", sa.String(length=3), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("incoming_token_sha256", sa.String(length=64), nullable=False),
        sa.Column("outgoing_token", sa.Text(), nullable=True),
        sa.Column("raw_token", sa.Boolean(), nullable=False),
        sa.Column("versions_url", sa.Text(), nullable=True),
        sa.Column("version", sa.String(length=8), nullable=True),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("registered_at", stekker.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpi_partners")),
        sa.UniqueConstraint("incoming_token_sha256", name=op.f("uq_ocpi_partners_incoming_token_sha256")),
    )
    with op.batch_alter_table("ocpi_partners", schema=None) as batch_op:
        batch_op.create_index("ix_ocpi_partners_party", ["country_code", "party_id"], unique=False)

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ocpi_partner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("whitelist", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("default_profile_type", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("ocpi_last_updated", stekker.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_tokens_ocpi_partner_id_ocpi_partners"),
            "ocpi_partners",
            ["ocpi_partner_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tokens_ocpi_partner_id_ocpi_partners"), type_="foreignkey")
        batch_op.drop_column("ocpi_last_updated")
        batch_op.drop_column("default_profile_type")
        batch_op.drop_column("language")
        batch_op.drop_column("whitelist")
        batch_op.drop_column("ocpi_partner_id")

    with op.batch_alter_table("ocpi_partners", schema=None) as batch_op:
        batch_op.drop_index("ix_ocpi_partners_party")

    op.drop_table("ocpi_partners")
