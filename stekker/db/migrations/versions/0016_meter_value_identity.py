"""a meter value is stored once

A station that did not get our acknowledgement sends the same MeterValues again, and each
sample was stored twice. Duplicates already stored are deleted (the copy with the lowest id
stays), then the unique index `ux_meter_values_sample` makes the insert skip a sample that is
already there: the same station, EVSE, connector, time, measurand, phase, context, location
and unit. NULLs in the last four count as '' (a unique index would take two NULLs as
different). The index starts with station_id, so the plain index on it goes.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0014"  # no 0015: that number was kept for a migration that proved unneeded
branch_labels = None
depends_on = None

_IDENTITY = (
    "station_id, evse_number, connector_number, timestamp, measurand, "
    "coalesce(phase, ''), coalesce(context, ''), coalesce(location, ''), coalesce(unit, '')"
)


def upgrade() -> None:
    # window functions: SQLite 3.25+ and PostgreSQL alike; one pass over the table
    op.execute(
        "DELETE FROM meter_values WHERE id IN ("
        f" SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY {_IDENTITY} ORDER BY id) AS copy"
        " FROM meter_values) AS numbered WHERE copy > 1)"
    )
    op.execute(f"CREATE UNIQUE INDEX ux_meter_values_sample ON meter_values ({_IDENTITY})")
    op.drop_index("ix_meter_values_station_id", table_name="meter_values")


def downgrade() -> None:
    op.create_index("ix_meter_values_station_id", "meter_values", ["station_id"])
    op.drop_index("ux_meter_values_sample", table_name="meter_values")
