"""tariffs, price caps, CDRs and energy contracts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 03:00:54.359634
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_caps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("max_per_kwh", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("max_per_session", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("max_parking_per_hour", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("reference_sessions", sa.JSON(), nullable=True),
        sa.Column("effective_from", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_caps")),
    )
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariffs")),
        sa.UniqueConstraint("code", name=op.f("uq_tariffs_code")),
    )
    op.create_table(
        "tariff_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("applies_to", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("energy_suppliers", sa.JSON(), nullable=False),
        sa.Column("parking_grace_minutes", sa.Integer(), nullable=False),
        sa.Column("ends_tariff", sa.Boolean(), nullable=False),
        sa.Column("effective_from", stekker.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_tariff_versions_tariff_id_tariffs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff_versions")),
        sa.UniqueConstraint("tariff_id", "version", name=op.f("uq_tariff_versions_tariff_id_version")),
    )
    with op.batch_alter_table("tariff_versions", schema=None) as batch_op:
        batch_op.create_index("ix_tariff_versions_status", ["status", "effective_from"], unique=False)

    op.create_table(
        "tariff_transitions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tariff_id"], ["tariffs.id"], name=op.f("fk_tariff_transitions_tariff_id_tariffs")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["tariff_versions.id"],
            name=op.f("fk_tariff_transitions_version_id_tariff_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariff_transitions")),
    )
    with op.batch_alter_table("tariff_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_tariff_transitions_tariff", ["tariff_id", "at"], unique=False)

    op.create_table(
        "cdrs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cdr_uid", sa.String(length=39), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("credits_cdr_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("replaces_cdr_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("evse_uid", sa.String(length=48), nullable=True),
        sa.Column("token_uid", sa.String(length=255), nullable=True),
        sa.Column("party", sa.String(length=6), nullable=True),
        sa.Column("tariff_version_id", sa.Integer(), nullable=True),
        sa.Column("price_cap_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_time", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_time", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("total_energy_wh", sa.BigInteger(), nullable=False),
        sa.Column("total_time_s", sa.BigInteger(), nullable=False),
        sa.Column("total_parking_time_s", sa.BigInteger(), nullable=False),
        sa.Column("total_cost_excl_vat", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("total_cost_incl_vat", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("capped_by", sa.String(length=20), nullable=True),
        sa.Column("energy_supplier", sa.String(length=64), nullable=True),
        sa.Column("energy_contract_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("readings", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", stekker.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["credits_cdr_id"], ["cdrs.id"], name=op.f("fk_cdrs_credits_cdr_id_cdrs")),
        sa.ForeignKeyConstraint(
            ["price_cap_id"], ["price_caps.id"], name=op.f("fk_cdrs_price_cap_id_price_caps")
        ),
        sa.ForeignKeyConstraint(["replaces_cdr_id"], ["cdrs.id"], name=op.f("fk_cdrs_replaces_cdr_id_cdrs")),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_cdrs_session_id_sessions")),
        sa.ForeignKeyConstraint(
            ["tariff_version_id"],
            ["tariff_versions.id"],
            name=op.f("fk_cdrs_tariff_version_id_tariff_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdrs")),
        sa.UniqueConstraint("cdr_uid", name=op.f("uq_cdrs_cdr_uid")),
        sa.UniqueConstraint("session_id", "sequence", name=op.f("uq_cdrs_session_id_sequence")),
    )
    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.create_index("ix_cdrs_created_at", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cdrs_station_id"), ["station_id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("energy_supplier", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("energy_contract_id", sa.String(length=64), nullable=True))

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("energy_supplier", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("energy_contract_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("energy_contract_id")
        batch_op.drop_column("energy_supplier")

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("energy_contract_id")
        batch_op.drop_column("energy_supplier")

    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cdrs_station_id"))
        batch_op.drop_index("ix_cdrs_created_at")

    op.drop_table("cdrs")
    with op.batch_alter_table("tariff_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_tariff_transitions_tariff")

    op.drop_table("tariff_transitions")
    with op.batch_alter_table("tariff_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_tariff_versions_status")

    op.drop_table("tariff_versions")
    op.drop_table("tariffs")
    op.drop_table("price_caps")
