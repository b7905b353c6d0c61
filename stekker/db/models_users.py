"""Tables of users (station management): the people who use the operator API, console and CLI,
their roles, and the API tokens they authenticate with."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow


class Role(StrEnum):
    """What a user may do. Admin may do everything, including managing users.

    Policy: an operator runs the network; the helpdesk may stop sessions, unlock, reset and
    change availability but not reconfigure; the municipality (our client) reads everything
    and requests and downloads diagnostics; read-only reads.
    """

    ADMIN = "admin"
    OPERATOR = "operator"  # runs the network: configuration, firmware, bulk jobs, inventory
    HELPDESK = "helpdesk"  # helps drivers: find sessions, stop, unlock, reset
    MUNICIPALITY = "municipality"  # the client: reads everything, requests and downloads diagnostics
    READ_ONLY = "read-only"


class User(Base):
    """A person (or a named integration) that uses the operator API, console or CLI.

    `username` is the login name, stored in lower case and never renamed (the audit log refers
    to it as `user:<username>`); users are disabled, not deleted, so that history stays
    readable. The password is a salted scrypt hash (`stekker.domain.passwords`).

    `failed_logins` and `locked_until` are no longer used: a lock stored on the user let
    anyone lock the user out. Wrong passwords now slow only the client address they come
    from (`stekker.domain.login_throttle`); the columns stay so that no migration rewrites
    the table.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class ApiToken(Base):
    """A bearer token that acts as one user, with that user's role: what the CLI, scripts and
    the console send as `Authorization: Bearer stk_...`.

    The secret is shown once, when the token is created; only its SHA-256 is stored (a
    random 256-bit secret needs no slow hash), and `prefix` (its first characters) lets
    people recognise it in lists. A token stops working when it expires, is revoked, or its
    user is disabled. `last_used_at` is updated at most once a minute.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
