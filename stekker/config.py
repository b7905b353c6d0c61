"""One typed Settings object: environment `STEKKER_*` over `stekker.toml` over defaults."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class UnknownStationPolicy(StrEnum):
    """What the gateway does with a station id it has never seen."""

    REJECT = "reject"
    ACCEPT = "accept"


class Settings(BaseSettings):
    """Every knob of a Stekker process. Defaults give the embedded single-process setup."""

    model_config = SettingsConfigDict(
        env_prefix="STEKKER_", toml_file="stekker.toml", extra="ignore", validate_default=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///stekker.db",
        description="SQLAlchemy async URL; unset means a SQLite file stekker.db in the working directory.",
    )
    host: str = Field(default="127.0.0.1", description="Address both listeners bind to.")
    ocpp_port: int = Field(default=8190, ge=0, le=65535)
    ocpp_plain_enabled: bool = Field(
        default=True, description="Listen for plain ws:// on ocpp_port (security profiles 0 and 1)."
    )
    ocpp_tls_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="wss:// listener (profiles 2 and 3), e.g. 8193; unset: none.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM: the server certificate, then its intermediates."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM: the server certificate's private key.")
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM: CA(s) that sign station client certificates (profile 3); set, the TLS "
        "listener asks for a client certificate but does not require one.",
    )
    http_port: int = Field(default=8191, ge=0, le=65535)
    unknown_stations: UnknownStationPolicy = UnknownStationPolicy.REJECT
    redis_url: str | None = Field(default=None, description="Unset: in-process event bus.")
    log_level: str = "INFO"
    evse_id_prefix: str = Field(
        default="NL*STK", pattern=r"^[A-Z]{2}\*[A-Z0-9]{3}$", description="Country*operator of eMI3 ids."
    )

    api_token: str | None = Field(
        default=None, description="Bearer token required by the operator API; unset leaves it open."
    )

    # OCPP gateway
    heartbeat_interval: int = Field(default=300, ge=10, description="Seconds, sent in BootNotification.")
    ws_ping_interval: float | None = Field(
        default=60.0, description="WebSocket ping every N s; None disables."
    )
    ws_ping_timeout: float | None = Field(default=30.0, description="Close when a pong takes longer.")
    ws_close_timeout: float = Field(default=5.0, gt=0, description="Wait this long for a closing handshake.")
    ws_max_frame_bytes: int = Field(default=1_048_576, ge=1024, description="Larger frames: close 1009.")
    call_timeout: float = Field(default=30.0, gt=0, description="Seconds a station has to answer our CALL.")
    last_seen_flush_interval: float = Field(default=5.0, gt=0)

    # Central authorization (requirement 76)
    local_authorize_offline: bool = Field(
        default=True, description="Let stations use their local list/cache while offline."
    )
    authorization_cache_enabled: bool = Field(default=False)
    configure_stations_on_boot: bool = Field(
        default=True, description="Push the central-authorization configuration and local list after boot."
    )
    remote_stop_rejected_after: float = Field(
        default=30.0,
        ge=0,
        description="Seconds to wait for a station to stop a transaction we rejected before RemoteStop.",
    )

    @model_validator(mode="after")
    def _listeners_make_sense(self) -> Self:
        """Refuse a gateway configuration that cannot work, naming the settings involved.
        (Whether the files are readable PEM is checked when the TLS context is built.)"""
        if self.ocpp_tls_port is None:
            if not self.ocpp_plain_enabled:
                raise ValueError("ocpp_plain_enabled is false and ocpp_tls_port is unset: no OCPP listener")
            if self.tls_client_ca_file is not None:
                raise ValueError("tls_client_ca_file is set but ocpp_tls_port is not: set both or neither")
            return self
        if self.tls_cert_file is None or self.tls_key_file is None:
            raise ValueError("ocpp_tls_port is set: tls_cert_file and tls_key_file (PEM) are required too")
        if self.ocpp_plain_enabled and self.ocpp_tls_port == self.ocpp_port != 0:
            raise ValueError(f"ocpp_tls_port and ocpp_port are both {self.ocpp_port}: use two ports")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
