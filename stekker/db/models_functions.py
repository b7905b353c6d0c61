"""Tables of remote functions whose outcome arrives later: firmware updates and reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow


class FirmwareUpdate(Base):
    """A request that a station install new firmware, and how far the station got.

    Its id is the requestId a 2.0.1 station (or a 1.6 station with the security extension)
    echoes in FirmwareStatusNotification. A plain 1.6 station echoes nothing, so its status
    notifications are attached to its latest update still in progress. `answer` is what the
    station said to the request (Accepted, Rejected, ... or why it was never delivered);
    `status` its latest progress report, `history` every report as [{status, at}].
    """

    __tablename__ = "firmware_updates"
    __table_args__ = (Index("ix_firmware_updates_station_ts", "station_id", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    location: Mapped[str] = mapped_column(String(512))
    retrieve_at: Mapped[datetime]
    install_at: Mapped[datetime | None]
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    answer: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(Base):
    """An EVSE (or, without one, any EVSE of the station) held for one token until it expires.

    `reservation_id` is the id the station knows it by (ours unless the operator chose one);
    `status` follows its life: Requested, then the station's answer (Accepted, Occupied,
    Rejected, ...), then Cancelled, or Expired/Removed as a 2.0.1 station reports them.
    """

    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_station_reservation", "station_id", "reservation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    reservation_id: Mapped[int] = mapped_column(Integer)
    evse_number: Mapped[int | None] = mapped_column(Integer)
    token_uid: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(32), default="Requested")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
