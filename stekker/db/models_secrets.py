"""Table of the secrets an installation makes for itself (e.g. the export pseudonym key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow


class InstallationSecret(Base):
    """A secret this installation made once, by itself, and keeps for good: e.g. the key of the
    keyed hash that turns token uids into pseudonyms in exports (`name` "export.pseudonym_key"),
    when the operator did not configure one.

    It lives in the database so that every process (and every restart) of one installation uses
    the same value: a pseudonym must stay the same across exports. The value is as sensitive as
    the data it protects, and no more: whoever reads this table can read the raw data too.
    A secret is never changed: changing the pseudonym key would break every comparison between
    old and new exports.
    """

    __tablename__ = "installation_secrets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
