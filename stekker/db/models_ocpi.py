"""Tables of the OCPI 2.2.1 interface: the roaming partners we exchange data with."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow
from stekker.db.models import BigId


class PartnerStatus(StrEnum):
    """Where a partner's OCPI connection stands.

    pending: we issued a registration token (A) and wait for the partner's credentials;
    registered: credentials exchanged both ways, data flows; unregistered: ended by either side
    (its tokens no longer open anything, its history stays).
    """

    PENDING = "pending"
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"


class OcpiPartner(Base):
    """A roaming partner connected over OCPI: an eMSP, a roaming hub, the national access point.

    Two secrets: the partner calls us with `incoming_token` (the registration token A until
    the handshake, then the token C we issued; only its SHA-256 is kept), and we call the
    partner with `outgoing_token` (its token B, kept as given: we must present it).
    `raw_token` marks a partner that sends and expects the token unencoded instead of base64
    (a per-partner setting, because some do). `endpoints` are the partner's module URLs from
    its version details, keyed "module:ROLE" (e.g. "tokens:SENDER"). `roles` are its
    credentials roles as it sent them; `country_code`, `party_id` and `role` its main one.
    `granted_parties` ("NL/ABC", ...) are the parties the operator lets it act for: its roles
    never name another (a partner's own word does not make a party its drivers' owner).
    """

    __tablename__ = "ocpi_partners"
    __table_args__ = (Index("ix_ocpi_partners_party", "country_code", "party_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=PartnerStatus.PENDING)
    role: Mapped[str] = mapped_column(String(8), default="EMSP")  # EMSP, HUB, NAP, OTHER
    country_code: Mapped[str | None] = mapped_column(String(2))
    party_id: Mapped[str | None] = mapped_column(String(3))
    roles: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    granted_parties: Mapped[list[str]] = mapped_column(JSON, default=list)
    incoming_token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    outgoing_token: Mapped[str | None] = mapped_column(Text)
    raw_token: Mapped[bool] = mapped_column(Boolean, default=False)
    versions_url: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(8))
    endpoints: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxStatus(StrEnum):
    """pending: waiting for (another) attempt; delivered: the partner took it; dead: its attempts
    ran out (or the partner went away): the operator sees it and may retry it."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OcpiOutboxItem(Base):
    """One push to a roaming partner (a session update, a CDR, a command result...), written in
    the same transaction as the change it reports and delivered after commit, in order per
    (partner, key), retried with backoff. A partner that is down delays only its own pushes,
    never a station's messages.
    """

    __tablename__ = "ocpi_outbox"
    __table_args__ = (
        Index("ix_ocpi_outbox_due", "status", "next_attempt_at"),
        Index("ix_ocpi_outbox_order", "partner_id", "key", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("ocpi_partners.id"))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. "sessions", "cdrs", "commands.result"
    key: Mapped[str] = mapped_column(String(100))  # the object, for ordering: "session:42"
    method: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[Any | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class ClientStatus(StrEnum):
    """OCPI ConnectionStatus: how a hub says one of its parties is connected to it.
    Only CONNECTED parties can be reached; the others get no pushes (spec: "do not queue")."""

    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class OcpiClientInfo(Base):
    """What a roaming hub told us about one party behind it (OCPI HubClientInfo): its role and
    whether the hub can reach it now. One row per (hub, country code, party id); the hub owns
    it and replaces it with PUT (a ClientInfo is never deleted, only SUSPENDED).
    `last_updated` is the hub's time for the object; an older copy never overwrites a newer one.
    """

    __tablename__ = "ocpi_client_info"
    __table_args__ = (UniqueConstraint("hub_partner_id", "country_code", "party_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hub_partner_id: Mapped[int] = mapped_column(ForeignKey("ocpi_partners.id"))
    country_code: Mapped[str] = mapped_column(String(2))  # upper case (CiString)
    party_id: Mapped[str] = mapped_column(String(3))
    role: Mapped[str] = mapped_column(String(8))  # CPO, EMSP, HUB, NAP, NSP, OTHER, SCSP
    status: Mapped[str] = mapped_column(String(12))
    last_updated: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
