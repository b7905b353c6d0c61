"""Settings: environment over stekker.toml over defaults, and bad values refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from stekker.config import Settings, UnknownStationPolicy


def test_environment_over_toml_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stekker.toml").write_text(
        'ocpp_port = 9999\nhttp_port = 7777\nunknown_stations = "accept"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEKKER_OCPP_PORT", "1234")
    settings = Settings()
    assert settings.ocpp_port == 1234  # environment wins
    assert settings.http_port == 7777  # then the file
    assert settings.unknown_stations is UnknownStationPolicy.ACCEPT
    assert settings.host == "127.0.0.1" and settings.database_url == "sqlite+aiosqlite:///stekker.db"
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STEKKER_OCPP_PORT", "70000"),
        ("STEKKER_UNKNOWN_STATIONS", "maybe"),
        ("STEKKER_EVSE_ID_PREFIX", "nl-stk"),
        ("STEKKER_PSEUDONYM_KEY", "too-short"),
        ("STEKKER_OPENDATA_BURST", "0"),
        ("STEKKER_HELPDESK_PHONE", "0" * 41),
    ],
)
def test_bad_setting_is_refused_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    assert variable.removeprefix("STEKKER_").lower() in str(error.value)


def test_an_admission_bound_beyond_the_handshake_is_refused() -> None:
    """A 503 with Retry-After can only be sent while the handshake is open."""
    with pytest.raises(ValueError, match=r"ocpp_admission_timeout \(10 s\) must be shorter"):
        Settings(ocpp_admission_timeout=10, ocpp_handshake_timeout=10)
    assert Settings(ocpp_admission_timeout=5, ocpp_handshake_timeout=10).ocpp_admission_timeout == 5
