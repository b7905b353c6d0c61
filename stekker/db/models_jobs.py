"""Tables of bulk jobs and configuration templates (station management)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class JobState(StrEnum):
    """A job runs until every station has a final state, or until it is cancelled."""

    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class JobStationState(StrEnum):
    """Where one station of a job is.

    queued → sent → accepted | rejected | failed | timed_out; a station that is offline
    waits (waiting) until it connects, or until the job's offline expiry (expired);
    cancelling the job cancels queued and waiting stations (sent ones finish).
    """

    QUEUED = "queued"
    WAITING = "waiting"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: States from which a station of a job is still to be served.
OPEN_STATES = (JobStationState.QUEUED, JobStationState.WAITING, JobStationState.SENT)


class Job(Base):
    """A bulk job: one remote function with one set of arguments, run on every station of a
    selection that was resolved when the job was created (the stations are its rows in
    `job_stations`). An operator watches it while it runs, from any process, and may cancel
    it; it is resumed when the server restarts.

    `concurrency` bounds the stations served at once, `call_timeout` is the seconds each
    station has to answer, and stations offline until `expires_at` end as expired.
    `template_id` is set when the job applies a configuration template.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    function: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.RUNNING)
    actor: Mapped[str] = mapped_column(String(100))
    concurrency: Mapped[int] = mapped_column(Integer)
    call_timeout: Mapped[float] = mapped_column(Float)
    offline_expiry_seconds: Mapped[int] = mapped_column(Integer)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("config_templates.id", ondelete="SET NULL"), index=True
    )
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(100))


class JobStation(Base):
    """One station of a bulk job and how far it got: its state, what the station answered
    (`status`, e.g. Accepted, Rejected, a CALLERROR code), why it failed (`error`), how often
    it was sent (`attempts`) and when. `args` overrides the job's arguments for this station
    (a template applies only the keys that drift on each station)."""

    __tablename__ = "job_stations"
    __table_args__ = (
        UniqueConstraint("job_id", "station_id", name="uq_job_stations_job_station"),
        Index("ix_job_stations_job_state", "job_id", "state"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(_BigId, ForeignKey("jobs.id", ondelete="CASCADE"))
    station_id: Mapped[str] = mapped_column(String(48))
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=JobStationState.QUEUED)
    status: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigTemplate(Base):
    """A desired configuration for a group of stations: the values its stations should hold
    (items), compared with what they reported to show drift, and applied as a bulk job.
    `version` counts the changes; each change is in the audit log with the items before
    and after."""

    __tablename__ = "config_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("station_groups.id", ondelete="CASCADE"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100))


class ConfigTemplateItem(Base):
    """One desired value of a template: a variable as people write it (`HeartbeatInterval`
    for a 1.6 key, `OCPPCommCtrlr.HeartbeatInterval` for 2.0.1) and, optionally, the OCPP
    version it applies to ('' : every station the label fits)."""

    __tablename__ = "config_template_items"
    __table_args__ = (
        UniqueConstraint("template_id", "label", "ocpp_version", name="uq_config_template_items_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("config_templates.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    ocpp_version: Mapped[str] = mapped_column(String(16), default="")
    value: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
