"""stations without credentials become explicitly "no authentication"

A station with neither a password nor a security profile used to connect without credentials;
now only one registered explicitly without authentication (security profile 0) does. Existing
ones are marked so, so nothing stops connecting at the upgrade; `stekker serve` warns at start
how many there are, and the API and console show them as a risk.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE charging_stations SET security_profile = 0 "
            "WHERE password_hash IS NULL AND security_profile IS NULL"
        )
    )


def downgrade() -> None:
    # Nothing to undo: profile 0 (no authentication) already meant what it means now, and the
    # stations marked here connect without credentials under the old rule too.
    pass
