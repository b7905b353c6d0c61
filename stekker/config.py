"""One typed Settings object: environment `STEKKER_*` over `stekker.toml` over defaults."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field
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
