"""Our OCPI 2.2.1 CPO against an independent implementation: the eMSP server of the
`extrawest-ocpi` library from PyPI (its own virtualenv, pydantic 1: tests/interop/peer_env.py),
run as a separate process over loopback (tests/interop/emsp_peer.py).

We register with it (credentials handshake, we are the client, its token A), its driver's card
reaches us through our tokens receiver (with the token it got from us), a simulated OCPP 1.6
station charges with that card (the session of tests/test_cdrs.py), and every push our outbox
makes (location PUT, EVSE status PATCH, session PUT and PATCHes, CDR POST, tariff PUT) must be
accepted by the library's own routes and pydantic models, with the right values.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.bus import Event
from stekker.db.models_ocpi import OcpiPartner
from stekker.services import ocpi_outbox, ocpi_partners
from tests.interop.peer_env import peer_python
from tests.observe import eventually
from tests.test_cdrs import EXPECTED, TARIFF, add_tariff, base_time, iso, session_16
from tests.test_ocpi_locations import add_location, add_station

PEER_SCRIPT = Path(__file__).parent / "interop" / "emsp_peer.py"
TOKEN_A = "extrawest-registration-token"
CARD = "EXT-CARD-0001"
STATION = "INTEROP1"
#: Bounds every wait on the peer (a process of its own, on a shared slow machine).
PEER_START_TIMEOUT = 30.0
PUSH_TIMEOUT = 30.0


@dataclass
class Peer:
    """The running peer: its versions URL and what it recorded, one JSON object per request."""

    versions_url: str
    log: Path
    process: subprocess.Popen[bytes]
    output: Path

    def received(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except ValueError:
                if number < len(lines) - 1:  # only the last line may be half written
                    raise
        return records

    def find(self, module: str, method: str, path_end: str = "", **where: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.received()
            if r["module"] == module
            and r["method"] == method
            and r["path"].endswith(path_end)
            and all(_get(r["body"], k) == v for k, v in where.items())
        ]

    def problem(self) -> str:
        return f"peer output:\n{self.output.read_text()[-3000:]}\nreceived:\n{self.received()}"


def _get(body: Any, key: str) -> Any:
    return body.get(key) if isinstance(body, dict) else None


@pytest.fixture(scope="session")
def peer_venv_python() -> Path:
    return peer_python()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_peer(python: Path, workdir: Path) -> Peer:
    port = _free_port()
    log, output = workdir / "peer-received.jsonl", workdir / "peer-output.txt"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [str(python), str(PEER_SCRIPT), "--port", str(port), "--log", str(log),
             "--token-a", TOKEN_A, "--country", "NL", "--party", "EXT"],
            cwd=workdir,  # the library reads a .env from its working directory: none there
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    return Peer(f"http://127.0.0.1:{port}/ocpi/versions", log, process, output)


@pytest.fixture
async def peer(peer_venv_python: Path, tmp_path: Path) -> AsyncIterator[Peer]:
    """The peer process, stopped whatever happens (terminate, then kill after 10 s)."""
    running = _start_peer(peer_venv_python, tmp_path)
    process = running.process
    try:
        await _wait_until_up(running)
        yield running
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)


async def _wait_until_up(peer: Peer) -> None:
    auth = {"Authorization": f"Token {base64.b64encode(TOKEN_A.encode()).decode()}"}
    deadline = asyncio.get_running_loop().time() + PEER_START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if peer.process.poll() is not None:
                raise AssertionError(f"the peer exited with {peer.process.returncode}\n{peer.problem()}")
            try:
                if (await client.get(peer.versions_url, headers=auth)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the peer did not answer in {PEER_START_TIMEOUT} s\n{peer.problem()}")
            await asyncio.sleep(0.1)


@pytest.fixture
def every_meter_value(server: Stekker) -> Iterator[None]:
    """A session PATCH for every meter value (normally at most one a minute)."""
    server.roaming_pushes.meter_interval = timedelta(0)
    try:
        yield
    finally:
        server.roaming_pushes.meter_interval = timedelta(seconds=60)


def _accepted(record: dict[str, Any]) -> bool:
    return (
        record["parsed"]
        and record["errors"] is None
        and record["http_status"] == 200
        and record["ocpi_status"] == 1000
    )


async def test_an_independent_emsp_accepts_every_push_of_a_roaming_session(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str, peer: Peer, every_meter_value: None
) -> None:
    base = base_time()
    await add_tariff(server, TARIFF, effective_from=base - timedelta(days=30))

    # we register with the peer: its credentials module reads our versions with our token B
    partner = await ocpi_partners.register_with(
        server.ctx, actor="test", name="extrawest-ocpi", versions_url=peer.versions_url, token_a=TOKEN_A,
        our_versions_url=f"http://127.0.0.1:{server.http_port}/ocpi/versions", parties=["NL/EXT"],
    )  # fmt: skip
    assert partner["status"] == "registered", partner
    assert partner["endpoints"]["sessions:RECEIVER"].endswith("/ocpi/emsp/2.2.1/sessions/")
    [registration] = peer.find("credentials", "POST")
    assert _accepted(registration), peer.problem()
    token_b = registration["stored"]["their_credentials"]["token"]

    # its driver's card, pushed to our tokens receiver with the token we gave it
    card = {
        "country_code": "NL", "party_id": "EXT", "uid": CARD, "type": "RFID",
        "contract_id": "NL-EXT-C00000001-X", "issuer": "Extrawest", "valid": True,
        "whitelist": "ALLOWED", "last_updated": iso(base, -60),
    }  # fmt: skip
    response = await api.put(
        f"/ocpi/2.2.1/tokens/NL/EXT/{CARD}",
        json=card,
        headers={"Authorization": f"Token {base64.b64encode(token_b.encode()).decode()}"},
    )
    assert response.status_code == 200 and response.json()["status_code"] == 1000, response.text

    location_id = await add_location(api, "Interop plein")
    await add_station(
        api, STATION, location_id, [{"evse_number": 1, "evse_id": f"NL*STK*E{STATION}*1",
                                     "connectors": [{"connector_number": 1}]}],
    )  # fmt: skip
    evse_uid = f"NL*STK*E{STATION}*1"
    tx = await session_16(ocpp_url, STATION, CARD, base)
    await server.bus.publish(Event("tariff.activated", {"tariff": "STD", "version": 1}))

    def everything_arrived() -> bool:
        return bool(
            peer.find("locations", "PUT", f"/{location_id}")
            and peer.find("locations", "PATCH", f"/{evse_uid}", status="CHARGING")
            and peer.find("sessions", "PUT", f"/{tx}")
            and peer.find("sessions", "PATCH", f"/{tx}", status="COMPLETED")
            and peer.find("cdrs", "POST")
            and peer.find("tariffs", "PUT", "/STD")
        )

    try:
        await eventually(everything_arrived, timeout=PUSH_TIMEOUT)
    except AssertionError:
        raise AssertionError(f"not every push reached the peer\n{peer.problem()}") from None

    # every object the peer got passed the library's own validation and was answered 1000
    pushes = [r for r in peer.received() if r["module"] in ("locations", "sessions", "cdrs", "tariffs")]
    refused = [r for r in pushes if not _accepted(r)]
    assert not refused, json.dumps(refused, indent=1)

    # and our outbox agrees: nothing left to retry, nothing dead
    async def outbox_done() -> list[dict[str, Any]] | None:
        items = await ocpi_outbox.list_items(server.ctx, status=None, partner_id=partner["id"], limit=500)
        return items if items and all(i["status"] != "pending" for i in items) else None

    items = await eventually(outbox_done, timeout=PUSH_TIMEOUT)
    assert all(i["status"] == "delivered" for i in items), items

    # the values, as the library parsed and stored them (it lowercases every CiString: OCPI
    # compares those case-insensitively, so do we)
    [location] = [r["stored"] for r in peer.find("locations", "PUT", f"/{location_id}")][-1:]
    assert location["id"] == str(location_id) and location["country_code"].upper() == "NL"
    assert [e["uid"].upper() for e in location["evses"]] == [evse_uid]
    assert [t.upper() for t in location["evses"][0]["connectors"][0]["tariff_ids"]] == ["STD"]
    statuses = [r["body"]["status"] for r in peer.find("locations", "PATCH", f"/{evse_uid}")]
    assert "CHARGING" in statuses

    [put] = peer.find("sessions", "PUT", f"/{tx}")
    assert put["stored"]["status"] == "ACTIVE" and put["stored"]["cdr_token"]["uid"].upper() == CARD
    patches = peer.find("sessions", "PATCH", f"/{tx}")
    kwh = [p["body"]["kwh"] for p in patches]
    assert kwh == sorted(kwh) and kwh[-1] == 22, kwh
    final = patches[-1]["stored"]  # the session after the library merged every PATCH
    assert final["status"] == "COMPLETED" and final["kwh"] == 22
    assert final["total_cost"]["excl_vat"] == EXPECTED["excl_vat"], final["total_cost"]
    assert final["end_date_time"] == iso(base, 120)

    [cdr_post] = peer.find("cdrs", "POST")
    cdr = cdr_post["stored"]
    assert cdr["session_id"] == str(tx) and cdr["total_energy"] == 22
    assert cdr["total_cost"] == EXPECTED, cdr["total_cost"]
    assert cdr["cdr_token"]["uid"].upper() == CARD and cdr["cdr_token"]["party_id"].upper() == "EXT"
    assert cdr["cdr_location"]["evse_id"].upper() == evse_uid

    [tariff] = [r["stored"] for r in peer.find("tariffs", "PUT", "/STD")][-1:]
    assert tariff["id"].upper() == "STD" and tariff["currency"] == "EUR" and tariff["elements"]

    # the peer's validation is live: a Session without its cdr_token is refused and recorded so
    async with server.ctx.db() as db:
        row = await db.get(OcpiPartner, partner["id"])
        assert row is not None and row.outgoing_token
        token_c = row.outgoing_token
    broken = {k: v for k, v in put["body"].items() if k != "cdr_token"}
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.put(
            partner["endpoints"]["sessions:RECEIVER"] + "NL/STK/broken",
            json=broken,
            headers={"Authorization": ocpi_partners.encode_token(token_c, False)},
        )
    assert answer.status_code == 422, answer.text
    refusals = peer.find("sessions", "PUT", "/broken")
    assert len(refusals) == 1, peer.problem()
    [refusal] = refusals
    assert not _accepted(refusal) and refusal["errors"][0]["loc"] == ["body", "cdr_token"], refusal
