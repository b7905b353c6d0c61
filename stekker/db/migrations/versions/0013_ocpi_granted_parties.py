"""ocpi granted parties: the parties the operator lets each roaming partner act for

Revision ID: 0013
Revises: 0012

Until now a partner's parties were the roles it declared itself. On upgrade every partner is
granted the parties it has now (its roles and its main party), so nothing changes for partners
already connected; from here on only the operator changes a grant.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_PARTY = re.compile(r"^[A-Z]{2}/[A-Z0-9]{3}$")


def _parties(roles: Any, country_code: str | None, party_id: str | None) -> list[str]:
    if isinstance(roles, str):
        roles = json.loads(roles)
    found = {f"{country_code or ''}/{party_id or ''}".upper()}
    for role in roles or ():
        if isinstance(role, dict):
            found.add(f"{role.get('country_code') or ''}/{role.get('party_id') or ''}".upper())
    return sorted(p for p in found if _PARTY.match(p))


def upgrade() -> None:
    with op.batch_alter_table("ocpi_partners") as batch:
        batch.add_column(sa.Column("granted_parties", sa.JSON(), nullable=False, server_default="[]"))
    partners = sa.table(
        "ocpi_partners",
        sa.column("id", sa.Integer()),
        sa.column("roles", sa.JSON()),
        sa.column("country_code", sa.String()),
        sa.column("party_id", sa.String()),
        sa.column("granted_parties", sa.JSON()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(partners.c.id, partners.c.roles, partners.c.country_code, partners.c.party_id)
    ).all()
    for row in rows:
        connection.execute(
            partners.update()
            .where(partners.c.id == row.id)
            .values(granted_parties=_parties(row.roles, row.country_code, row.party_id))
        )


def downgrade() -> None:
    with op.batch_alter_table("ocpi_partners") as batch:
        batch.drop_column("granted_parties")
