"""Tables of diagnostics (station management)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow
from stekker.db.models import BigId


class DiagnosticsState(StrEnum):
    """Where a diagnostics request stands. `failed` means the station never got or never
    answered the request (offline, CALLERROR, timeout); `expired` means no file arrived before
    the upload URL's deadline."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    UPLOAD_FAILED = "upload_failed"
    EXPIRED = "expired"


# States in which a file may still come (the station is, or may be, working on it).
OPEN_STATES = (DiagnosticsState.REQUESTED, DiagnosticsState.ACCEPTED, DiagnosticsState.UPLOADING)


class DiagnosticsRequest(Base):
    """One request to one station to upload a diagnostics or security log file.

    We give the station an upload URL on our own HTTP server that is single-use and expires at
    `expires_at`; only the SHA-256 of its secret is kept. The station answers the request
    (accepted/rejected), reports its progress (DiagnosticsStatusNotification in 1.6,
    LogStatusNotification in 2.0.1; `station_status` is the last one) and uploads the file,
    which we store under `storage_key` with its name, size, digest and content type. The
    OCPP requestId of GetLog is this row's id.
    """

    __tablename__ = "diagnostics_requests"
    __table_args__ = (Index("ix_diagnostics_requests_station_id", "station_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("charging_stations.id", ondelete="CASCADE"))
    requested_by: Mapped[str] = mapped_column(String(100))
    log_type: Mapped[str] = mapped_column(String(20))  # DiagnosticsLog | SecurityLog
    window_start: Mapped[datetime | None]
    window_stop: Mapped[datetime | None]
    action: Mapped[str | None] = mapped_column(String(32))  # GetDiagnostics | GetLog, once sent
    state: Mapped[str] = mapped_column(String(20), default=DiagnosticsState.REQUESTED, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    station_status: Mapped[str | None] = mapped_column(String(40))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    # set while one upload is being received, so two at once cannot both write
    receiving_since: Mapped[datetime | None]
    file_name: Mapped[str | None] = mapped_column(String(255))
    storage_key: Mapped[str | None] = mapped_column(String(255))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    status_at: Mapped[datetime | None]
    uploaded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
