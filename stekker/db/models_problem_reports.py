"""Table of the problems drivers report from the public EVSE page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stekker.db.base import Base
from stekker.db.models import BigId


class ProblemReport(Base):
    """A problem a driver reported at an EVSE, for the helpdesk's list.

    `evse_uid` is the public EVSE id the driver's page showed (kept as text, so the report
    still says where it was if the station is later retired or renumbered); `station_id` links
    the station while it exists. `kind` is the driver's choice (`domain.problem_reports.
    ProblemKind`), `message` their words and `contact` what they typed to be called back, if
    anything: nothing else about the driver is stored, not even the address the form came from.
    `language` is the page's, so the helpdesk knows which language to answer in. The helpdesk
    marks a report handled (`handled_at`, `handled_by`).
    """

    __tablename__ = "problem_reports"
    __table_args__ = (Index("ix_problem_reports_open", "handled_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    evse_uid: Mapped[str] = mapped_column(String(48))
    station_id: Mapped[str | None] = mapped_column(
        ForeignKey("charging_stations.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(2))
    reported_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[str | None] = mapped_column(String(100))
