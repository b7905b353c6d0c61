"""Configuration templates: a desired configuration per group, the drift report against what
1.6 and 2.0.1 stations reported, and apply as a bulk job after which nothing drifts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.app import Stekker
from stekker.db.models import AuditEntry, StationGroup, StationGroupMember
from stekker.sim import SimulatedStation, SimulatedStation201
from tests.observe import eventually


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"call_timeout": 3.0}


@contextlib.asynccontextmanager
async def running(*stations: SimulatedStation | SimulatedStation201) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(s.run()) for s in stations]
    try:
        await asyncio.gather(*(s.wait_online(timeout=10) for s in stations))
        yield
    finally:
        for station in stations:
            await station.close()
        for task in tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)


async def make_group(server: Stekker, name: str, station_ids: list[str]) -> None:
    async def job(db: AsyncSession) -> None:
        group = StationGroup(name=name)
        db.add(group)
        await db.flush()
        for station_id in station_ids:
            db.add(StationGroupMember(group_id=group.id, station_id=station_id))

    await server.ctx.write(job)


async def register(api: httpx.AsyncClient, *station_ids: str) -> None:
    for station_id in station_ids:
        response = await api.post("/api/stations", json={"authentication": "none", "id": station_id})
        assert response.status_code == 201, response.text


async def finished_job(api: httpx.AsyncClient, job_id: int, timeout: float = 15) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        job: dict[str, Any] = (await api.get(f"/api/jobs/{job_id}")).json()
        return job if job["finished_at"] is not None else None

    body: dict[str, Any] = await eventually(check, timeout)
    return body


async def drift(api: httpx.AsyncClient, ref: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/templates/{ref}/drift", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {s["station_id"]: {e["variable"]: e["state"] for e in s["entries"]} for s in report["stations"]}


ITEMS = [
    {"variable": "HeartbeatInterval", "value": "300"},
    {"variable": "MeterValueSampleInterval", "value": "10"},
    {"variable": "NoSuchKey", "value": "1"},
    {"variable": "OCPPCommCtrlr.HeartbeatInterval", "value": "120"},
]


async def test_drift_for_16_and_201_and_apply_fixes_it(
    server: Stekker, api: httpx.AsyncClient, ocpp_url: str
) -> None:
    server.jobs.after_boot_delay = 0.05
    a16 = SimulatedStation("T16A", ocpp_url, reboot_delay=0.1)
    b16 = SimulatedStation("T16B", ocpp_url, reboot_delay=0.1, meter_interval=30)
    c201 = SimulatedStation201("T201A", ocpp_url, reboot_delay=0.1)
    await register(api, "T16A", "T16B", "T201A", "TNEVER")
    await make_group(server, "pilot", ["T16A", "T16B", "T201A", "TNEVER"])
    response = await api.post(
        "/api/templates", json={"name": "pilot-config", "group": "pilot", "items": ITEMS}
    )
    assert response.status_code == 201, response.text
    template = response.json()
    assert template["version"] == 1 and template["group"] == "pilot"

    async with running(a16, b16, c201):
        # nothing reported yet: every applicable key is missing
        report = await drift(api, "pilot-config")
        assert states(report)["T16A"] == {
            "HeartbeatInterval": "missing",
            "MeterValueSampleInterval": "missing",
            "NoSuchKey": "missing",
        }
        assert states(report)["T201A"] == {"OCPPCommCtrlr.HeartbeatInterval": "missing"}
        assert len(states(report)["TNEVER"]) == 4  # version unknown: every item, all missing

        # refresh: a get_base_report job over the group
        response = await api.post("/api/templates/pilot-config/refresh", json={"offline_expiry_seconds": 0})
        assert response.status_code == 201, response.text
        refresh = await finished_job(api, response.json()["id"])
        assert refresh["function"] == "get_base_report"
        assert {k: v for k, v in refresh["counts"].items() if v} == {"accepted": 3, "expired": 1}

        async def reported() -> dict[str, Any] | None:
            body = await drift(api, str(template["id"]))
            return body if states(body)["T201A"]["OCPPCommCtrlr.HeartbeatInterval"] != "missing" else None

        report = await eventually(reported, 10)  # 2.0.1 reports arrive after the answer
        assert states(report) == {
            "T16A": {"HeartbeatInterval": "ok", "MeterValueSampleInterval": "ok", "NoSuchKey": "unknown"},
            "T16B": {
                "HeartbeatInterval": "ok",
                "MeterValueSampleInterval": "differs",
                "NoSuchKey": "unknown",
            },
            "T201A": {"OCPPCommCtrlr.HeartbeatInterval": "differs"},
            "TNEVER": dict.fromkeys(
                [
                    "HeartbeatInterval",
                    "MeterValueSampleInterval",
                    "NoSuchKey",
                    "OCPPCommCtrlr.HeartbeatInterval",
                ],
                "missing",
            ),
        }
        entries = {s["station_id"]: {e["variable"]: e for e in s["entries"]} for s in report["stations"]}
        b_interval = entries["T16B"]["MeterValueSampleInterval"]
        assert b_interval["actual"] == "30" and b_interval["desired"] == "10" and b_interval["reported_at"]
        assert entries["T201A"]["OCPPCommCtrlr.HeartbeatInterval"]["actual"] == "300"
        assert report["totals"] == {"ok": 3, "differs": 2, "missing": 4, "unknown": 2}
        assert report["stations_drifting"] == 4 and report["station_count"] == 4
        per_key = {k["variable"]: k["counts"] for k in report["keys"]}
        assert per_key["MeterValueSampleInterval"] == {"ok": 1, "differs": 1, "missing": 1, "unknown": 0}
        counts_b = next(s["counts"] for s in report["stations"] if s["station_id"] == "T16B")
        assert counts_b == {"ok": 1, "differs": 1, "missing": 0, "unknown": 1}
        # the group view holds the same
        group_view = (await api.get("/api/templates/drift", params={"group": "pilot"})).json()
        assert group_view["totals"] == report["totals"] and group_view["templates"] == ["pilot-config"]

        # a dry run names the stations; apply makes the job
        response = await api.post("/api/templates/pilot-config/apply", json={"dry_run": True})
        assert response.status_code == 200, response.text
        assert response.json() == {"job": None, "station_ids": ["T16B", "T201A"], "skipped": ["TNEVER"]}
        response = await api.post(
            "/api/templates/pilot-config/apply", json={"dry_run": True, "station_ids": ["T201A", "T16A", "X"]}
        )
        assert response.json() == {"job": None, "station_ids": ["T201A"], "skipped": []}
        response = await api.post("/api/templates/pilot-config/apply", json={"timeout": 2})
        assert response.status_code == 201, response.text
        applied = response.json()
        assert applied["station_ids"] == ["T16B", "T201A"] and applied["skipped"] == ["TNEVER"]
        job = await finished_job(api, applied["job"]["id"])
        assert job["function"] == "set_variables" and job["template_id"] == template["id"]
        assert {s["station_id"]: s["state"] for s in job["stations"]} == {
            "T16B": "accepted",
            "T201A": "accepted",
        }
        listed = (await api.get("/api/jobs", params={"template_id": template["id"]})).json()
        assert {j["function"] for j in listed} == {"set_variables", "get_base_report"}

        # only the drifting keys were sent, and the stations hold the desired values now
        assert b16.configuration["MeterValueSampleInterval"].value == "10"
        assert c201.device_model.integer("OCPPCommCtrlr", "HeartbeatInterval") == 120
        b_job = next(s for s in job["stations"] if s["station_id"] == "T16B")
        assert [r["variable"] for r in b_job["reply"]["results"]] == ["MeterValueSampleInterval"]

        report = await drift(api, "pilot-config")
        assert report["totals"]["differs"] == 0
        assert states(report)["T16B"]["MeterValueSampleInterval"] == "ok"
        assert states(report)["T201A"]["OCPPCommCtrlr.HeartbeatInterval"] == "ok"
        drifting = await drift(api, "pilot-config", drifting_only="true")
        assert [s["station_id"] for s in drifting["stations"]] == [
            "T16A",
            "T16B",
            "TNEVER",
        ]  # unknown/missing

        # nothing left to apply on the connected stations
        response = await api.post("/api/templates/pilot-config/apply", json={})
        assert response.status_code == 200 and response.json()["job"] is None


async def test_template_changes_are_versioned_and_audited(server: Stekker, api: httpx.AsyncClient) -> None:
    await register(api, "V1")
    await make_group(server, "g1", ["V1"])
    await make_group(server, "g2", [])
    body = {"name": "hb", "group": "g1", "items": [{"variable": "HeartbeatInterval", "value": "60"}]}
    assert (await api.post("/api/templates", json=body)).status_code == 201
    duplicate = await api.post("/api/templates", json=body)
    assert duplicate.status_code == 409 and "exists" in duplicate.json()["detail"]

    response = await api.patch(
        "/api/templates/hb",
        json={
            "group": "g2",
            "items": [
                {"variable": "OCPPCommCtrlr.HeartbeatInterval/Actual", "value": "90"},
                {"variable": "HeartbeatInterval", "value": "90", "ocpp_version": "1.6"},
            ],
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["version"] == 2 and updated["group"] == "g2"
    assert updated["items"] == [
        {"variable": "OCPPCommCtrlr.HeartbeatInterval", "value": "90", "ocpp_version": ""},
        {"variable": "HeartbeatInterval", "value": "90", "ocpp_version": "ocpp1.6"},
    ]
    by_id = (await api.get(f"/api/templates/{updated['id']}")).json()
    assert by_id == updated
    assert [t["name"] for t in (await api.get("/api/templates", params={"group": "g2"})).json()] == ["hb"]
    assert (await api.get("/api/templates", params={"group": "g1"})).json() == []

    assert (await api.delete("/api/templates/hb")).status_code == 204
    assert (await api.get("/api/templates/hb")).status_code == 404
    async with server.ctx.db() as db:
        rows = (
            await db.execute(
                select(AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.object_type == "template")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [a for a, _d in rows] == ["template.created", "template.updated", "template.deleted"]
    assert rows[1][1]["items_before"] == [{"label": "HeartbeatInterval", "value": "60", "ocpp_version": ""}]
    assert rows[1][1]["version"] == 2


BAD_TEMPLATES: list[Any] = [
    {},
    [],
    {"name": "x", "group": "g", "items": []},
    {"name": "", "group": "g", "items": [{"variable": "A", "value": "1"}]},
    {"name": "1abc", "group": "g", "items": [{"variable": "A", "value": "1"}]},  # names start with a letter
    {"name": "a b", "group": "g", "items": [{"variable": "A", "value": "1"}]},
    {"name": "x" * 101, "group": "g", "items": [{"variable": "A", "value": "1"}]},
    {"name": "t", "group": "'; DROP TABLE config_templates; --", "items": [{"variable": "A", "value": "1"}]},
    {"name": "t", "group": "g", "items": [{"variable": "A.B.C[", "value": "1"}]},
    {"name": "t", "group": "g", "items": [{"variable": "", "value": "1"}]},
    {"name": "t", "group": "g", "items": [{"variable": "x" * 201, "value": "1"}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "v" * 1001}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": 1}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1", "ocpp_version": "9.9"}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1", "ocpp_version": "ocpp2.0.1"}]},
    {"name": "t", "group": "g", "items": [{"variable": "Ctrl.A", "value": "1", "ocpp_version": "ocpp1.6"}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1"}, {"variable": "A", "value": "2"}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1", "bogus": True}]},
    {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1"}] * 201},
    {"name": "t", "group": "g", "items": "A=1"},
]


async def test_bad_templates_are_422_and_store_nothing(server: Stekker, api: httpx.AsyncClient) -> None:
    await make_group(server, "g", [])
    for body in BAD_TEMPLATES:
        response = await api.post("/api/templates", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"], body
    assert (await api.get("/api/templates")).json() == []
    response = await api.post(
        "/api/templates", json={"name": "t", "group": "nope", "items": [{"variable": "A", "value": "1"}]}
    )
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    response = await api.post("/api/templates", content=b"{no", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


async def test_bad_template_references_are_4xx(server: Stekker, api: httpx.AsyncClient) -> None:
    await make_group(server, "g", [])
    good = {"name": "t", "group": "g", "items": [{"variable": "A", "value": "1"}]}
    assert (await api.post("/api/templates", json=good)).status_code == 201
    for method, path, expected in [
        ("GET", "/api/templates/nope", 404),
        ("GET", "/api/templates/999", 404),
        ("GET", "/api/templates/nope/drift", 404),
        ("POST", "/api/templates/nope/apply", 404),
        ("POST", "/api/templates/nope/refresh", 404),
        ("PATCH", "/api/templates/nope", 404),
        ("DELETE", "/api/templates/nope", 404),
        ("GET", "/api/templates/drift?group=nope", 404),
        ("GET", "/api/templates/a%20b", 422),
        ("GET", "/api/templates/..%2Fetc", 404),  # a slash: no such route
        ("GET", "/api/templates/1%27%20OR%201=1", 422),
        ("GET", "/api/templates/" + "x" * 200, 422),
        ("GET", "/api/templates/9999999999999999999999", 422),
        ("GET", "/api/templates/t/drift?limit=0", 422),
        ("GET", "/api/templates/t/drift?offset=-1", 422),
        ("GET", "/api/templates/drift", 422),
        ("GET", "/api/templates/drift?group=a%27--", 422),
        ("GET", "/api/templates?group=a%20b", 422),
    ]:
        response = await api.request(
            method, path, json={"POST": {}, "PATCH": {"description": "x"}}.get(method)
        )
        assert response.status_code == expected, (method, path, response.text)
        assert response.json()["detail"], path
    bad_apply: list[Any] = [
        {"concurrency": 0},
        {"timeout": "x"},
        {"offline_expiry_seconds": -1},
        {"bogus": 1},
        [],
        {"station_ids": ["x" * 49]},
        {"station_ids": "T1"},
    ]
    for body in bad_apply:
        response = await api.post("/api/templates/t/apply", json=body)
        assert response.status_code == 422, (body, response.text)
    bad_patch: list[Any] = [
        {"items": []},
        {"group": "nope!"},
        {"items": [{"variable": "A["}]},
        {"name": "renamed"},
        {},
    ]
    for patch in bad_patch:
        response = await api.patch("/api/templates/t", json=patch)
        assert response.status_code == 422, (patch, response.text)
    assert (await api.patch("/api/templates/t", json={"group": "nope"})).status_code == 404
    assert (await api.get("/api/templates/t")).json()["version"] == 1  # nothing changed


async def test_apply_with_empty_group_has_no_job(server: Stekker, api: httpx.AsyncClient) -> None:
    await make_group(server, "empty", [])
    body = {"name": "t", "group": "empty", "items": [{"variable": "A", "value": "1"}]}
    assert (await api.post("/api/templates", json=body)).status_code == 201
    response = await api.post("/api/templates/t/apply")
    assert response.status_code == 200 and response.json() == {"job": None, "station_ids": [], "skipped": []}
    assert (await drift(api, "t"))["stations"] == []
    refresh = await api.post("/api/templates/t/refresh")
    assert refresh.status_code == 422 and "no station" in refresh.json()["detail"]


async def test_cli_templates(server: Stekker, api: httpx.AsyncClient, ocpp_url: str, cli: Any) -> None:
    server.jobs.after_boot_delay = 0.05
    station = SimulatedStation("TC1", ocpp_url, reboot_delay=0.1)
    await register(api, "TC1")
    await make_group(server, "cli", ["TC1"])
    async with running(station):
        result = await cli(
            "template", "create", "cli-hb", "--group", "cli", "--set", "MeterValueSampleInterval=42"
        )
        assert result.exit_code == 0, result.output
        result = await cli("template", "list")
        assert (
            result.exit_code == 0
            and "cli-hb" in result.output
            and "MeterValueSampleInterval=42" in result.output
        )
        result = await cli("template", "refresh", "cli-hb", "--wait")
        assert result.exit_code == 0, result.output
        result = await cli("template", "drift", "cli-hb")
        assert (
            result.exit_code == 0
            and "1 of 1 station(s) drift" in result.output
            and "differs" in result.output
        )
        result = await cli("template", "apply", "cli-hb", "--wait")
        assert result.exit_code == 0 and "accepted 1" in result.output, result.output
        assert station.configuration["MeterValueSampleInterval"].value == "42"
        result = await cli("template", "drift", "cli-hb")
        assert result.exit_code == 0 and "0 of 1 station(s) drift" in result.output
        result = await cli("template", "apply", "cli-hb")
        assert result.exit_code == 0 and "no drift" in result.output
    result = await cli("template", "drift", "nope")
    assert result.exit_code == 1 and "no template" in result.output
    result = await cli("template", "create", "x", "--group", "cli", "--set", "novalue")
    assert result.exit_code != 0
