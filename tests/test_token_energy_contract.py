"""A token's energy contract (OCPI energy_contract: supplier and contract id): set through the
API, the import and the CLI, refused when malformed, and recorded by sessions at their start."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from tests.observe import add_token, sessions_of
from tests.peers import now_iso, ocpp_station, raw_station
from tests.peers201 import tx_event


async def test_supplier_and_contract_are_set_read_changed_and_cleared(api: httpx.AsyncClient) -> None:
    token = await add_token(api, "CARD-E1", energy_supplier="Vattenfall", energy_contract_id="VF-123")
    assert (token["energy_supplier"], token["energy_contract_id"]) == ("Vattenfall", "VF-123")
    read = (await api.get(f"/api/tokens/{token['id']}")).json()
    assert (read["energy_supplier"], read["energy_contract_id"]) == ("Vattenfall", "VF-123")

    changed = await api.patch(f"/api/tokens/{token['id']}", json={"energy_supplier": "Eneco Zakelijk B.V."})
    assert changed.status_code == 200, changed.text
    assert changed.json()["energy_supplier"] == "Eneco Zakelijk B.V."
    # stations never see the supplier: no new local list version for it
    assert changed.json()["list_version"] == token["list_version"]

    cleared = await api.patch(
        f"/api/tokens/{token['id']}", json={"energy_supplier": None, "energy_contract_id": None}
    )
    assert cleared.status_code == 200
    assert (cleared.json()["energy_supplier"], cleared.json()["energy_contract_id"]) == (None, None)
    plain = await add_token(api, "CARD-E2")
    assert plain["energy_supplier"] is None and plain["energy_contract_id"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"energy_supplier": "x" * 65},
        {"energy_supplier": "Eneco\x07"},
        {"energy_supplier": "Eneco\nX"},
        {"energy_supplier": " Eneco"},
        {"energy_supplier": ""},
        {"energy_supplier": "Eneco", "energy_contract_id": "c" * 65},
        {"energy_supplier": "Eneco", "energy_contract_id": "A\x00B"},
        {"energy_contract_id": "VF-1"},  # a contract without a supplier
        {"energy_supplier": 12},
    ],
)
async def test_malformed_energy_contracts_are_refused(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.put("/api/tokens", json={"uid": "CARD-BAD", **body})
    assert response.status_code == 422, response.text
    assert "energy" in response.text
    assert (await api.get("/api/tokens", params={"uid": "CARD-BAD"})).json() == []


async def test_patch_cannot_leave_a_contract_without_its_supplier(api: httpx.AsyncClient) -> None:
    token = await add_token(api, "CARD-E3", energy_supplier="Budget Energie", energy_contract_id="BE-9")
    response = await api.patch(f"/api/tokens/{token['id']}", json={"energy_supplier": None})
    assert response.status_code == 422
    assert "energy_contract_id needs an energy_supplier" in response.json()["detail"]
    still = (await api.get(f"/api/tokens/{token['id']}")).json()
    assert still["energy_supplier"] == "Budget Energie"
    bad = await api.patch(f"/api/tokens/{token['id']}", json={"energy_contract_id": "\x1b[31m"})
    assert bad.status_code == 422


async def test_import_sets_the_energy_contract_and_refuses_bad_values(api: httpx.AsyncClient) -> None:
    csv_body = b"uid;energy_supplier;energy_contract_id\r\nIMP-1;Greenchoice;GC-77\r\nIMP-2;;\r\n"
    applied = await api.post(
        "/api/import/tokens",
        content=csv_body,
        headers={"Content-Type": "text/csv"},
        params={"dry_run": "false"},
    )
    assert applied.status_code == 200, applied.text
    tokens = {t["uid"]: t for t in (await api.get("/api/tokens")).json()}
    assert (tokens["IMP-1"]["energy_supplier"], tokens["IMP-1"]["energy_contract_id"]) == (
        "Greenchoice",
        "GC-77",
    )
    assert tokens["IMP-2"]["energy_supplier"] is None

    bad = (
        "uid,energy_supplier,energy_contract_id\r\nIMP-3,," + "x" * 70 + "\r\nIMP-4," + "y" * 65 + ",\r\n"
    ).encode()
    report = await api.post("/api/import/tokens", content=bad, headers={"Content-Type": "text/csv"})
    errors = {row["key"]: row["errors"] for row in report.json()["rows"]}
    assert any("needs an energy_supplier" in e for e in errors["IMP-3"])
    assert any("more than 64 characters" in e for e in errors["IMP-3"])
    assert any("energy_supplier has more than 64" in e for e in errors["IMP-4"])


async def test_cli_sets_and_clears_the_supplier(api: httpx.AsyncClient, cli: Any) -> None:
    result = await cli(
        "token", "add", "CLI-E1", "--energy-supplier", "Vandebron", "--energy-contract-id", "VDB-1"
    )
    assert result.exit_code == 0, result.output
    [token] = (await api.get("/api/tokens", params={"uid": "CLI-E1"})).json()
    assert (token["energy_supplier"], token["energy_contract_id"]) == ("Vandebron", "VDB-1")
    listed = await cli("token", "list")
    assert "Vandebron" in listed.output
    cleared = await cli("token", "supplier", str(token["id"]), "--clear")
    assert cleared.exit_code == 0, cleared.output
    assert (await api.get(f"/api/tokens/{token['id']}")).json()["energy_supplier"] is None
    refused = await cli("token", "supplier", str(token["id"]), "--contract", "X-1")
    assert refused.exit_code == 1 and "needs an energy_supplier" in refused.output
    usage = await cli("token", "supplier", str(token["id"]))
    assert usage.exit_code == 2


async def test_sessions_record_the_contract_at_their_start(api: httpx.AsyncClient, ocpp_url: str) -> None:
    token = await add_token(api, "CARD-S1", energy_supplier="Essent", energy_contract_id="ES-5")
    async with ocpp_station(ocpp_url, "CP-E1") as cp:
        started = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="CARD-S1", meter_start=1000, timestamp=now_iso())
        )
        # the driver switches supplier mid-session: the session keeps the one it started with
        await api.patch(
            f"/api/tokens/{token['id']}", json={"energy_supplier": "Eneco", "energy_contract_id": None}
        )
        await cp.call(
            call.StopTransaction(
                meter_stop=3000, timestamp=now_iso(), transaction_id=started.transaction_id, id_tag="CARD-S1"
            )
        )
    [session] = await sessions_of(api, "CP-E1")
    assert (session["energy_supplier"], session["energy_contract_id"]) == ("Essent", "ES-5")

    async with raw_station(ocpp_url, "CP-E2", protocol="ocpp2.0.1") as station:
        await station.ok("TransactionEvent", tx_event("Started", "e2-1", 0, token="CARD-S1", meter_wh=10))
        await station.ok("TransactionEvent", tx_event("Ended", "e2-1", 1, meter_wh=20, stoppedReason="Local"))
        await station.ok("TransactionEvent", tx_event("Started", "e2-2", 0, token="UNKNOWN-1", meter_wh=20))
    by_tx = {s["transaction_id"]: s for s in await sessions_of(api, "CP-E2")}
    assert by_tx["e2-1"]["energy_supplier"] == "Eneco" and by_tx["e2-1"]["energy_contract_id"] is None
    assert by_tx["e2-2"]["energy_supplier"] is None
