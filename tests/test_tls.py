"""OCPP security profiles 1-3 against the real gateway with a wss:// listener, on SQLite and
PostgreSQL: who is admitted over which transport, what a refused station and the operator see,
and that broken TLS clients do not hurt the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from stekker.app import Stekker
from stekker.cli import app as cli_app
from stekker.config import Settings, get_settings
from stekker.ocpp.tls import TlsConfigError, common_name
from tests.certs import CertificateAuthority, Issued
from tests.conftest import make_settings
from tests.observe import eventually
from tests.peers import Station, auth_header, raw_station

PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]
PASSWORD = "a-station-password-0001"


class Pki:
    """Our CA with the server certificate and client certificates for a few stations, and a
    stranger's CA that signs a client certificate we must not trust."""

    def __init__(self, directory: Path) -> None:
        self.ca = CertificateAuthority(directory)
        self.server = self.ca.issue("localhost", server=True)
        self.clients = {name: self.ca.issue(name) for name in ("CP3", "CP3-OTHER", "CP2-UP")}
        self.stranger = CertificateAuthority(directory, "Someone Else CA")
        self.stranger_client = self.stranger.issue("CP3")

    def station_context(self, client: str | Issued | None = None) -> ssl.SSLContext:
        """A station that trusts our CA, presenting the certificate issued for `client`."""
        return self.ca.client_context(self.clients[client] if isinstance(client, str) else client)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_extra() -> dict[str, Any]:
    """Parametrize to add settings on top of the TLS ones."""
    return {}


@pytest.fixture
def settings_overrides(pki: Pki, tls_extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "ocpp_tls_port": 0,
        "tls_cert_file": pki.server.cert,
        "tls_key_file": pki.server.key,
        "tls_client_ca_file": pki.ca.cert_file,
        "unknown_stations": "reject",
        **tls_extra,
    }


@pytest.fixture
def wss_url(server: Stekker) -> str:
    assert server.ocpp_tls_port is not None
    return f"wss://127.0.0.1:{server.ocpp_tls_port}/ocpp"


async def register(
    api: httpx.AsyncClient, station_id: str, profile: int | None, password: str | None
) -> None:
    body: dict[str, Any] = {"id": station_id, "security_profile": profile, "password": password}
    if profile is None and password is None:
        body["authentication"] = "none"  # no credentials at all: only as an explicit choice
    response = await api.post("/api/stations", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["security_profile"] == (0 if "authentication" in body else profile)


@contextlib.asynccontextmanager
async def station_socket(
    url: str,
    station_id: str,
    protocol: str,
    tls: ssl.SSLContext | None = None,
    password: str | None = None,
) -> AsyncIterator[ClientConnection]:
    headers = auth_header(station_id, password) if password else {}
    async with connect(
        f"{url}/{station_id}",
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=tls,
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == protocol
        yield ws


async def refused(
    url: str, station_id: str, protocol: str, tls: ssl.SSLContext | None = None, password: str | None = None
) -> tuple[int, str]:
    """Connect and expect the handshake refused: (HTTP status, body text)."""
    with pytest.raises(InvalidStatus) as error:
        async with station_socket(url, station_id, protocol, tls, password):
            pass
    response = error.value.response
    return response.status_code, (response.body or b"").decode()


async def events(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/stations/{station_id}/events")
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def connected_event(api: httpx.AsyncClient, station_id: str) -> dict[str, Any]:
    """The station is shown online, and its `connected` event says how it came in."""

    async def online() -> bool:
        station = (await api.get(f"/api/stations/{station_id}")).json()
        kinds = [e["kind"] for e in await events(api, station_id)]
        return bool(station["online"]) and "connected" in kinds

    await eventually(online)
    detail: dict[str, Any] = next(e for e in await events(api, station_id) if e["kind"] == "connected")[
        "detail"
    ]
    return detail


async def last_refusal(api: httpx.AsyncClient, station_id: str) -> str:
    latest = (await events(api, station_id))[0]
    assert latest["kind"] == "connection_refused", latest
    reason: str = latest["detail"]["reason"]
    return reason


# ---- profile 2: password over TLS -----------------------------------------------------------


async def test_wss_with_password_boots_and_is_online(api: httpx.AsyncClient, pki: Pki, wss_url: str) -> None:
    """A 1.6 station from the `ocpp` package boots over wss:// with Basic auth."""
    await register(api, "CP2", 2, PASSWORD)
    async with station_socket(wss_url, "CP2", "ocpp1.6", pki.station_context(), PASSWORD) as ws:
        station = Station("CP2", ws)
        task = asyncio.create_task(station.start())
        try:
            booted = await station.boot()
            assert booted.status == "Accepted"
            detail = await connected_event(api, "CP2")
            assert detail["transport"] == "wss" and detail["security_profile"] == 2
            shown = (await api.get("/api/stations/CP2")).json()
            assert shown["online"] and shown["vendor"] == "Test" and shown["security_profile"] == 2
        finally:
            task.cancel()


async def test_ocpp201_handshake_over_wss_with_password(
    api: httpx.AsyncClient, pki: Pki, wss_url: str
) -> None:
    await register(api, "CP2-201", 2, PASSWORD)
    async with station_socket(wss_url, "CP2-201", "ocpp2.0.1", pki.station_context(), PASSWORD):
        detail = await connected_event(api, "CP2-201")
        assert detail["protocol"] == "ocpp2.0.1"
        assert detail["transport"] == "wss" and detail["security_profile"] == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_wrong_or_missing_password_over_tls_is_401(
    api: httpx.AsyncClient, pki: Pki, wss_url: str, protocol: str
) -> None:
    await register(api, "CP2", 2, PASSWORD)
    for password in ("not-the-password-0000", None):
        status, body = await refused(wss_url, "CP2", protocol, pki.station_context(), password)
        assert status == 401 and "bad or missing credentials" in body
        assert await last_refusal(api, "CP2") == "bad or missing credentials"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile2_station_on_plain_ws_is_refused_with_the_reason(
    api: httpx.AsyncClient, ocpp_url: str, protocol: str
) -> None:
    await register(api, "CP2", 2, PASSWORD)
    status, body = await refused(ocpp_url, "CP2", protocol, password=PASSWORD)  # right password, wrong road
    reason = "station CP2 must connect over TLS (security profile 2)"
    assert status == 401 and reason in body
    assert await last_refusal(api, "CP2") == reason


# ---- profile 1: password on either transport ------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile1_station_connects_over_ws_and_wss(
    api: httpx.AsyncClient, pki: Pki, ocpp_url: str, wss_url: str, protocol: str
) -> None:
    await register(api, "CP1", 1, PASSWORD)
    async with station_socket(ocpp_url, "CP1", protocol, password=PASSWORD):
        detail = await connected_event(api, "CP1")
        assert detail["transport"] == "ws" and detail["security_profile"] == 1
    status, body = await refused(ocpp_url, "CP1", protocol)
    assert status == 401 and "bad or missing credentials" in body
    async with station_socket(wss_url, "CP1", protocol, pki.station_context(), PASSWORD):

        async def over_tls() -> bool:
            latest = await events(api, "CP1")
            return latest[0]["kind"] == "connected" and latest[0]["detail"]["transport"] == "wss"

        await eventually(over_tls)


# ---- profile 3: client certificate ----------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile3_with_its_certificate_is_admitted_without_password(
    api: httpx.AsyncClient, pki: Pki, wss_url: str, protocol: str
) -> None:
    await register(api, "CP3", 3, None)
    async with station_socket(wss_url, "CP3", protocol, pki.station_context("CP3")):
        detail = await connected_event(api, "CP3")
        assert detail == {
            "protocol": protocol,
            "remote": detail["remote"],
            "transport": "wss",
            "client_cn": "CP3",
            "security_profile": 3,
        }


async def test_profile3_station_boots_over_16(api: httpx.AsyncClient, pki: Pki, wss_url: str) -> None:
    await register(api, "CP3", 3, None)
    async with raw_station(wss_url, "CP3", ssl=pki.station_context("CP3")) as station:
        assert (await station.ok("Heartbeat", {}))["currentTime"]
    assert (await api.get("/api/stations/CP3")).json()["vendor"] == "Raw"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_profile3_refuses_another_stations_certificate_none_and_plain_ws(
    api: httpx.AsyncClient, pki: Pki, ocpp_url: str, wss_url: str, protocol: str
) -> None:
    await register(api, "CP3", 3, None)
    cases = [
        (wss_url, pki.station_context("CP3-OTHER"), "client certificate is for 'CP3-OTHER', not station CP3"),
        (
            wss_url,
            pki.station_context(),
            "station CP3 must present a client certificate (security profile 3)",
        ),
        (ocpp_url, None, "station CP3 must connect over TLS (security profile 3)"),
    ]
    for url, tls, reason in cases:
        status, body = await refused(url, "CP3", protocol, tls, PASSWORD)  # a password does not replace it
        assert status == 401 and reason in body, body
        assert reason in await last_refusal(api, "CP3")
    assert not (await api.get("/api/stations/CP3")).json()["online"]


async def test_profile2_station_may_upgrade_to_its_certificate(
    api: httpx.AsyncClient, pki: Pki, wss_url: str
) -> None:
    """Profiles are minimums: a profile-2 station that comes with its certificate (OCPP's
    upgrade path, before the operator raised the profile) is admitted at 3."""
    await register(api, "CP2-UP", 2, PASSWORD)
    async with station_socket(wss_url, "CP2-UP", "ocpp2.0.1", pki.station_context("CP2-UP")):
        detail = await connected_event(api, "CP2-UP")
        assert detail["security_profile"] == 3 and detail["client_cn"] == "CP2-UP"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_certificate_from_a_ca_we_do_not_trust_fails_the_handshake(
    api: httpx.AsyncClient, pki: Pki, wss_url: str, version: ssl.TLSVersion
) -> None:
    await register(api, "CP3", 3, None)
    tls = pki.ca.client_context(pki.stranger_client)  # trusts us, but we do not trust its issuer
    tls.minimum_version = tls.maximum_version = version
    # TLS 1.2: the server's alert or reset ends the handshake; 1.3: the client has finished its
    # side first, so it learns of the refusal as a closed socket where the HTTP answer should be.
    with pytest.raises((ssl.SSLError, ConnectionResetError, InvalidMessage)):
        async with station_socket(wss_url, "CP3", "ocpp1.6", tls):
            pass
    assert [e["kind"] for e in await events(api, "CP3")] == []  # never got as far as admission


async def test_client_that_does_not_trust_our_ca_fails_the_handshake(
    api: httpx.AsyncClient, wss_url: str
) -> None:
    await register(api, "CP2", 2, PASSWORD)
    with pytest.raises(ssl.SSLCertVerificationError):
        async with station_socket(wss_url, "CP2", "ocpp1.6", ssl.create_default_context(), PASSWORD):
            pass


# ---- profile unset: today's behaviour on both listeners -------------------------------------


async def test_station_without_profile_keeps_password_rule_on_both_ports(
    api: httpx.AsyncClient, pki: Pki, ocpp_url: str, wss_url: str
) -> None:
    await register(api, "CP-OPEN", None, None)
    async with raw_station(ocpp_url, "CP-OPEN"):
        assert (await connected_event(api, "CP-OPEN"))["security_profile"] == 0
    await register(api, "CP-PW", None, PASSWORD)
    status, _ = await refused(wss_url, "CP-PW", "ocpp1.6", pki.station_context())
    assert status == 401
    async with raw_station(
        wss_url, "CP-PW", ssl=pki.station_context(), additional_headers=auth_header("CP-PW", PASSWORD)
    ):
        assert (await connected_event(api, "CP-PW"))["security_profile"] == 2


# ---- listeners ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("tls_extra", [{"ocpp_plain_enabled": False, "ocpp_port": free_port()}])
async def test_plain_listener_can_be_switched_off(
    api: httpx.AsyncClient, pki: Pki, server: Stekker, tls_extra: dict[str, Any]
) -> None:
    assert server.ocpp_port is None and server.ocpp_tls_port is not None
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", tls_extra["ocpp_port"])
    await register(api, "CP1", 1, PASSWORD)
    async with raw_station(
        f"wss://127.0.0.1:{server.ocpp_tls_port}/ocpp",
        "CP1",
        ssl=pki.station_context(),
        additional_headers=auth_header("CP1", PASSWORD),
    ):
        assert (await connected_event(api, "CP1"))["security_profile"] == 2


async def test_garbage_on_the_tls_port_does_not_hurt_the_gateway(
    api: httpx.AsyncClient, pki: Pki, server: Stekker, wss_url: str, ocpp_url: str
) -> None:
    assert server.ocpp_tls_port is not None and server.ocpp_port is not None
    hostile = [
        b"\x16\x03\x01\x00\x2a\x01\x00\x00\x26" + b"\xff" * 38,  # a ClientHello of nonsense
        b"\x16\x03\x03\xff\xff" + b"\x01" * 300,  # a record that claims 64 KiB, then stops
        bytes(range(256)) * 2,  # not even a TLS record
        b"GET /ocpp/CP2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",  # ws:// at the wss:// port
    ]
    for data in hostile:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ocpp_tls_port)
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            if data.startswith(b"\x16\x03\x03\xff\xff"):
                writer.write_eof()  # the server is still waiting for the rest: tell it there is none
            await asyncio.wait_for(reader.read(), 5)  # the server hangs up
        writer.close()
    # wss:// at the ws:// port: the TLS ClientHello is not HTTP, the plain listener says so
    with pytest.raises((ssl.SSLError, ConnectionError)):
        async with station_socket(
            ocpp_url.replace("ws://", "wss://"), "CP2", "ocpp1.6", pki.station_context()
        ):
            pass
    await register(api, "CP2", 2, PASSWORD)
    async with raw_station(
        wss_url, "CP2", ssl=pki.station_context(), additional_headers=auth_header("CP2", PASSWORD)
    ) as station:
        assert (await station.ok("Heartbeat", {}))["currentTime"]


# ---- registering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"security_profile": 2}, "security profile 2 authenticates with a password"),
        ({"security_profile": 1}, "security profile 1 authenticates with a password"),
        ({"security_profile": 0, "password": PASSWORD}, "security profile 0 means no authentication"),
        ({"security_profile": 4, "password": PASSWORD}, "less than or equal to 3"),
        ({"security_profile": -1}, "greater than or equal to 0"),
        ({"security_profile": "two", "password": PASSWORD}, "valid integer"),
    ],
)
async def test_registering_an_impossible_profile_is_422(
    api: httpx.AsyncClient, body: dict[str, Any], message: str
) -> None:
    response = await api.post("/api/stations", json={"id": "CP-BAD", **body})
    assert response.status_code == 422 and message in response.text, response.text
    assert (await api.get("/api/stations/CP-BAD")).status_code == 404


async def test_cli_station_add_with_security_profile(
    api: httpx.AsyncClient, server: Stekker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEKKER_API_URL", f"http://127.0.0.1:{server.http_port}")
    runner = CliRunner()

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, list(args))

    result = await cli("station", "add", "CP-CLI", "--password", PASSWORD, "--security-profile", "2")
    assert result.exit_code == 0, result.output
    assert (await api.get("/api/stations/CP-CLI")).json()["security_profile"] == 2
    result = await cli("station", "add", "CP-CLI3", "--security-profile", "3")
    assert result.exit_code == 0, result.output
    result = await cli("station", "add", "CP-CLI2", "--security-profile", "2")
    assert result.exit_code == 1 and "authenticates with a password" in one_line(result.output)
    result = await cli("station", "add", "CP-CLI9", "--security-profile", "9")
    assert result.exit_code == 2  # typer refuses it before the API is asked


# ---- configuration refused at startup -------------------------------------------------------


def test_tls_port_without_certificate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="tls_cert_file and tls_key_file"):
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", ocpp_tls_port=8193)
    with pytest.raises(ValidationError, match="no OCPP listener"):
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", ocpp_plain_enabled=False)
    with pytest.raises(ValidationError, match="tls_client_ca_file is set but ocpp_tls_port is not"):
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", tls_client_ca_file=tmp_path / "ca.pem")


def test_unusable_tls_files_are_refused_naming_the_setting(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tls_cert_file": tmp_path / "missing.pem"}, "tls_cert_file .*missing.pem: cannot read it"),
        ({"tls_key_file": garbage}, "not a PEM certificate chain and its matching private key"),
        ({"tls_key_file": pki.clients["CP3"].key}, "KEY_VALUES_MISMATCH"),
        ({"tls_client_ca_file": garbage}, "tls_client_ca_file .* holds no PEM CA certificate"),
    ]
    for override, message in cases:
        files = {"tls_cert_file": pki.server.cert, "tls_key_file": pki.server.key, **override}
        settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/x.db", ocpp_tls_port=0, **files)
        with pytest.raises(TlsConfigError, match=message):
            Stekker(settings)


def one_line(text: str) -> str:
    """Rich wraps console output at the terminal width; compare without the line breaks."""
    return " ".join(text.split())


def test_serve_refuses_bad_tls_configuration_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEKKER_OCPP_TLS_PORT", "8193")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["serve"])
        assert result.exit_code == 2 and "tls_cert_file and tls_key_file" in one_line(result.output)
        monkeypatch.setenv("STEKKER_TLS_CERT_FILE", str(tmp_path / "nope.pem"))
        monkeypatch.setenv("STEKKER_TLS_KEY_FILE", str(tmp_path / "nope.key"))
        get_settings.cache_clear()
        result = CliRunner().invoke(cli_app, ["serve"])
        assert result.exit_code == 2, result.output
        assert "stekker cannot start: tls_cert_file" in one_line(result.output)
        # a long temporary path is wrapped mid-word, so compare without any whitespace
        assert "nope.pem:cannotreadit" in "".join(result.output.split())
    finally:
        get_settings.cache_clear()


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "OCPP_TLS_PORT": "8193",
        "TLS_CERT_FILE": "/etc/stekker/server.pem",
        "TLS_KEY_FILE": "/etc/stekker/server.key",
        "OCPP_PLAIN_ENABLED": "false",
    }.items():
        monkeypatch.setenv(f"STEKKER_{name}", value)
    settings = Settings()
    assert settings.ocpp_tls_port == 8193 and not settings.ocpp_plain_enabled
    assert settings.tls_cert_file == Path("/etc/stekker/server.pem") and settings.tls_client_ca_file is None


def test_common_name_of_odd_subjects() -> None:
    assert common_name(None) is None
    assert common_name({}) is None  # a certificate the TLS layer did not verify
    assert common_name({"subject": ((("organizationName", "CPO"),),)}) is None
    two = {"subject": ((("commonName", "CP1"),), (("commonName", "CP2"),))}
    assert common_name(two) is None  # names two stations: names none
    assert common_name({"subject": ((("organizationName", "CPO"),), (("commonName", "CP1"),))}) == "CP1"
