"""One typed Settings object: environment `STEKKER_*` over `stekker.toml` over defaults."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from stekker import config_check
from stekker.domain.map_tiles import DEFAULT_ATTRIBUTION, DEFAULT_TILE_URL, check_tile_url


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
    http_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body of the operator API and OCPI (JSON); larger: 413 before it is "
        "read, parsed or authenticated. Uploads (upload_max_bytes) and imports have their own limits.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's line and headers; slower: the connection "
        "is closed (slowloris).",
    )
    unknown_stations: UnknownStationPolicy = UnknownStationPolicy.REJECT
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db; set: cluster mode (PostgreSQL required), several processes "
        "share stations, events and work through it. Unset: one process, in-process event bus.",
    )
    redis_prefix: str = Field(
        default="stekker:",
        pattern=r"^[A-Za-z0-9_.:-]{1,40}$",
        description="Prefix of every Redis key, so two installations can share one Redis.",
    )
    node_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="This process's name in the cluster; unset: host-pid-random, new at every start.",
    )
    cluster_lease_seconds: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="Lifetime of a node's leases (its stations, the work it leads); a killed process's "
        "stations show offline and its work moves on after about this long.",
    )
    log_level: str = "INFO"
    log_format: str = Field(
        default="text",
        pattern=r"^(text|json)$",
        description="text: for a terminal; json: one JSON object a line (node, station, correlation id).",
    )
    evse_id_prefix: str = Field(
        default="NL*STK", pattern=r"^[A-Z]{2}\*[A-Z0-9]{3}$", description="Country*operator of eMI3 ids."
    )
    business_name: str = Field(
        default="Stekker", min_length=1, max_length=100, description="Our name as OCPI partners see it."
    )
    ocpi_push_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Attempts of a push to a roaming partner before it is dead "
        "(5 s doubling to at most 1 h between attempts: 12 is about 3.5 hours).",
    )
    ocpi_partner_timeout: float = Field(
        default=10.0, gt=0, le=120, description="Seconds we wait for a roaming partner's OCPI server."
    )
    ocpi_allow_private_urls: bool = Field(
        default=False,
        description="Let roaming partners' URLs (versions, endpoints, response_url) point at loopback, "
        "private, link-local and other non-public addresses; off, such a URL is refused before we connect.",
    )
    ocpi_registration_attempts: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Credentials POSTs/PUTs per partner token per minute (each makes us fetch the "
        "partner's URLs); more are answered HTTP 429.",
    )
    ocpi_authorize_timeout: float = Field(
        default=3.0,
        gt=0,
        le=20,
        description="Seconds we wait in all for an eMSP's real-time authorization while a station's "
        "Authorize waits (no answer by then: the token's whitelist decides); keep it well under the "
        "stations' own call timeout.",
    )

    api_token: str | None = Field(
        default=None,
        description="Bootstrap admin bearer token of the operator API (besides users' tokens); unset "
        "and no user yet: the API is open.",
    )
    # Users and API tokens of the operator API
    auth_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long a verified API token is trusted without the database."
    )
    login_free_failures: int = Field(
        default=3,
        ge=1,
        description="Wrong passwords for one user name from one client address before each next "
        "attempt must wait 1, 2, 4, ... s.",
    )
    login_address_free_failures: int = Field(
        default=20,
        ge=1,
        description="Wrong passwords from one client address, over all user names, before each next "
        "attempt from it must wait 1, 2, 4, ... s.",
    )
    login_max_delay_seconds: float = Field(
        default=900.0, gt=0, description="The longest wait the login throttle imposes."
    )
    login_token_hours: float = Field(
        default=12.0, gt=0, description="Lifetime of a token from POST /api/auth/token."
    )

    # OCPP gateway
    heartbeat_interval: int = Field(
        default=300,
        ge=1,
        description="Seconds, sent in BootNotification; silence over two intervals is a missed heartbeat.",
    )
    ws_ping_interval: float | None = Field(
        default=60.0, description="WebSocket ping every N s; None disables."
    )
    ws_ping_timeout: float | None = Field(default=30.0, description="Close when a pong takes longer.")
    ws_close_timeout: float = Field(default=5.0, gt=0, description="Wait this long for a closing handshake.")
    shutdown_timeout: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="Seconds SIGTERM/SIGINT give the orderly shutdown (stations closed with 1001, "
        "frames in hand answered, the writer and logs flushed) before the process exits anyway.",
    )
    ws_max_frame_bytes: int = Field(default=1_048_576, ge=1024, description="Larger frames: close 1009.")
    call_timeout: float = Field(default=30.0, gt=0, description="Seconds a station has to answer our CALL.")
    reset_boot_window: float = Field(
        default=60.0,
        ge=0,
        le=600,
        description="Seconds after a Reset whose answer was lost to a dropped connection in which "
        "a BootNotification of the station shows that the reset happened.",
    )
    reconcile_boot_wait: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="Seconds after a station with sessions open here connects in which its "
        "BootNotification says it rebooted; without one, it is asked which of them still run "
        "(2.0.1 GetTransactionStatus, 1.6 the connectors' status) and the others are closed.",
    )
    ocpp_admission_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds the check of a connecting station (who it is, its credentials) may take; "
        "beyond, the handshake is answered 503 with Retry-After instead of timing out unanswered.",
    )
    ocpp_handshake_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds a client has to complete the WebSocket handshake."
    )
    # A station's fair share of the gateway (see stekker.ocpp.connection.StationConnection)
    ocpp_station_rate: float = Field(
        default=20.0, gt=0, description="Frames a second one station is answered at, after its burst."
    )
    ocpp_station_burst: int = Field(
        default=100, ge=1, description="Frames a quiet station may send at once (an offline queue's replay)."
    )
    ocpp_station_backlog: int = Field(
        default=16, ge=2, description="Frames read from a station, not yet handled; beyond: not read."
    )
    ocpp_flood_seconds: float = Field(
        default=30.0, gt=0, description="A station whose backlog stays full this long is disconnected (1008)."
    )
    ocpp_auth_free_failures: int = Field(
        default=5,
        ge=1,
        description="Wrong station passwords from one address for one station id before each next "
        "attempt must wait 1, 2, 4, ... s (refused with 429 and Retry-After, the password unchecked).",
    )
    ocpp_auth_address_free_failures: int = Field(
        default=20, ge=1, description="The same, from one address over all station ids."
    )
    ocpp_auth_max_delay: float = Field(default=300.0, gt=0, description="The longest such wait, seconds.")
    ocpp_station_storage_per_hour: int = Field(
        default=10_000_000,
        ge=0,
        description="Bytes of station events and message log one station may make us store per hour; "
        "beyond, what it sends is counted, not stored, until the next hour (0: no limit).",
    )
    station_event_max_bytes: int = Field(
        default=4096, ge=256, description="A station event's detail is cut to this (JSON bytes), marked so."
    )
    last_seen_flush_interval: float = Field(default=5.0, gt=0)

    # OCPP message log (every frame in and out, per station) and connection health (req. 96)
    message_log_enabled: bool = Field(default=True, description="Store every OCPP frame in and out.")
    message_log_retention_days: int = Field(default=30, ge=1, description="Older frames are purged daily.")
    message_log_max_frame_chars: int = Field(
        default=65_536, ge=256, description="Longer frames are stored cut to this length, marked truncated."
    )
    message_log_flush_interval: float = Field(default=0.5, gt=0, description="Seconds between batch writes.")
    message_log_batch_size: int = Field(
        default=500, ge=1, description="Frames per INSERT; a full batch is written at once."
    )
    message_log_max_pending: int = Field(
        default=50_000, ge=1, description="Frames waiting in memory; beyond this the oldest are dropped."
    )
    message_log_spill_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="While the database is down, frames beyond message_log_max_pending are kept in a "
        "file under files_dir, up to this many bytes, and written when it is back (0: shed them).",
    )
    message_log_purge_interval: float = Field(default=86_400.0, gt=0, description="Seconds between purges.")

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
    remote_start_session_wait: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="Seconds a remote start through the API waits, after the station accepted, for the "
        "session to begin (1.6 StartTransaction, 2.0.1 TransactionEvent), to answer with its id; "
        "later, the answer links to the remote start to poll. 0: do not wait.",
    )

    # Files stations upload (diagnostics and logs, requirement 51)
    files_dir: Path | None = Field(
        default=None,
        description="Where uploaded files are kept; unset: `stekker-files` next to the SQLite "
        "database (or in the working directory with PostgreSQL).",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Base URL stations use to reach our HTTP port (upload URLs); unset: "
        "http://{host}:{http_port}.",
    )
    upload_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1, description="Larger uploads: 413.")
    upload_url_lifetime: float = Field(
        default=7200.0, gt=0, description="Seconds an upload URL stays valid; no file by then: expired."
    )
    diagnostics_expiry_interval: float = Field(
        default=60.0, gt=0, description="Seconds between sweeps that mark overdue upload requests expired."
    )

    # Tariffs and CDRs (requirements 157, 158)
    tariff_activation_interval: float = Field(
        default=15.0,
        gt=0,
        description="Seconds between checks that mark approved tariff versions active once their time "
        "has come (pricing never waits for this: it reads the effective time).",
    )
    cdr_sweep_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between sweeps that build CDRs a crash or outage left unbuilt.",
    )

    # Open data (requirements 159, 11) and export (169)
    opendata_requests_per_minute: int = Field(
        default=120,
        ge=1,
        description="Open-data requests one client (IP address) may make per minute; more get a 429 with "
        "Retry-After. The live stream counts once per connection.",
    )
    opendata_burst: int = Field(
        default=30,
        ge=1,
        description="Requests a quiet client may make at once before the per-minute rate applies.",
    )
    opendata_streams_per_client: int = Field(
        default=4, ge=1, description="Live change streams one client (IP address) may hold open at once."
    )
    opendata_stream_backlog: int = Field(
        default=10_000,
        ge=1,
        description="Changes the live stream keeps, so a client reconnecting with Last-Event-ID misses none.",
    )
    opendata_resync_interval: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between full rebuilds of the open-data cache (it follows every change as it "
        "happens; the rebuild also catches edits made behind the application's back).",
    )
    # The web console and the public station pages (issue 8)
    helpdesk_phone: str | None = Field(
        default=None,
        max_length=40,
        description="Phone number drivers see on the public station pages, e.g. '+31 30 123 4567'.",
    )
    charge_start_grace_seconds: int = Field(
        default=300,
        ge=0,
        le=86_400,
        description="Not charging at a session's start (the handshake, a car waking up) is not parking "
        "for this long; a car that has not started charging by then pays the idle fee from then on.",
    )
    console_offline_alert_minutes: int = Field(
        default=15, ge=1, description="The dashboard lists stations offline longer than this."
    )
    console_secure_cookies: bool | None = Field(
        default=None,
        description="Secure flag on console cookies; unset: when the request came in over https.",
    )
    map_tile_url: str = Field(
        default=DEFAULT_TILE_URL,
        max_length=300,
        description="Tiles of the console's map, a Leaflet URL template with {z}, {x} and {y} ({s}. before "
        "the host for subdomains); the console's pages allow images from that host only. Empty: no tiles, "
        "the map is the built-in drawing of the locations (also shown whenever the tiles cannot load).",
    )
    map_tile_attribution: str = Field(
        default=DEFAULT_ATTRIBUTION,
        max_length=200,
        description="Text shown in the map's corner to credit the tiles (plain text), as the tile server's "
        "licence asks.",
    )

    pseudonym_key: SecretStr | None = Field(
        default=None,
        min_length=16,  # a short key could be guessed, and with it every pseudonym reversed
        description="Key of the keyed hash that replaces token uids in exports for roles that may not see "
        "them. Unset: a random key is made once and kept in the database.",
    )

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url_is_usable(cls, value: str) -> str:
        return check_tile_url(value)

    @property
    def storage_directory(self) -> Path:
        if self.files_dir is not None:
            return self.files_dir
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix(prefix)).parent / "stekker-files"
        return Path("stekker-files")

    @model_validator(mode="after")
    def _admission_answers_within_the_handshake(self) -> Self:
        """A station whose admission cannot be decided gets 503 with Retry-After only while its
        handshake is still open; an admission bound at or beyond the handshake's would close the
        socket unanswered instead (and the station retries at once, not when we asked)."""
        if self.ocpp_admission_timeout >= self.ocpp_handshake_timeout:
            raise ValueError(
                f"ocpp_admission_timeout ({self.ocpp_admission_timeout:g} s) must be shorter than "
                f"ocpp_handshake_timeout ({self.ocpp_handshake_timeout:g} s)"
            )
        return self

    @model_validator(mode="after")
    def _listeners_make_sense(self) -> Self:
        """Refuse a gateway configuration that cannot work, naming the settings involved.
        (Whether the files are readable PEM is checked when the TLS context is built.)"""
        ocpp_ports = {"ocpp_port": self.ocpp_port if self.ocpp_plain_enabled else None}
        ocpp_ports["ocpp_tls_port"] = self.ocpp_tls_port
        for name, port in ocpp_ports.items():
            if port == self.http_port != 0:
                raise ValueError(f"http_port and {name} are both {port}: use two ports")
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

    @property
    def party(self) -> tuple[str, str]:
        """Our OCPI (country_code, party_id), from the EVSE id prefix ("NL*STK" → ("NL", "STK"))."""
        country, _, party = self.evse_id_prefix.partition("*")
        return country.upper(), party.upper()


def settings_file() -> Path:
    """The TOML file the settings are read from: `stekker.toml` in the working directory."""
    return Path(str(Settings.model_config.get("toml_file") or "stekker.toml"))


def load_settings() -> Settings:
    """The settings from `STEKKER_*`, `stekker.toml` and the defaults, or `SettingsError` with
    one line: the file's syntax error (with its line), an unknown key in it (with the nearest
    known one), or each invalid value with the variable or file it came from."""
    return config_check.load(Settings, settings_file())


def warn_unknown_variables() -> None:
    """Log a warning for each `STEKKER_*` variable no setting reads (a typo is ignored otherwise)."""
    config_check.warn_unknown_variables(Settings.model_fields)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
