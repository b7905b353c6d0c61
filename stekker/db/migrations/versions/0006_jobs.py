"""bulk jobs and configuration templates

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stekker.db.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> stekker.db.base.UTCDateTime:
    return stekker.db.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "config_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["station_groups.id"],
            name=op.f("fk_config_templates_group_id_station_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_config_templates_name")),
    )
    with op.batch_alter_table("config_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_config_templates_group_id"), ["group_id"], unique=False)

    op.create_table(
        "config_template_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("ocpp_version", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["config_templates.id"],
            name=op.f("fk_config_template_items_template_id_config_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_template_items")),
        sa.UniqueConstraint("template_id", "label", "ocpp_version", name="uq_config_template_items_key"),
    )

    op.create_table(
        "jobs",
        sa.Column("id", _BigId, nullable=False),
        sa.Column("function", sa.String(length=64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("call_timeout", sa.Float(), nullable=False),
        sa.Column("offline_expiry_seconds", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["config_templates.id"],
            name=op.f("fk_jobs_template_id_config_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_state_created", ["state", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_template_id"), ["template_id"], unique=False)

    op.create_table(
        "job_stations",
        sa.Column("id", _BigId, nullable=False),
        sa.Column("job_id", _BigId, nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reply", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_stations_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_stations")),
        sa.UniqueConstraint("job_id", "station_id", name="uq_job_stations_job_station"),
    )
    with op.batch_alter_table("job_stations", schema=None) as batch_op:
        batch_op.create_index("ix_job_stations_job_state", ["job_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_stations", schema=None) as batch_op:
        batch_op.drop_index("ix_job_stations_job_state")
    op.drop_table("job_stations")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_template_id"))
        batch_op.drop_index("ix_jobs_state_created")
    op.drop_table("jobs")
    op.drop_table("config_template_items")
    with op.batch_alter_table("config_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_config_templates_group_id"))
    op.drop_table("config_templates")
