"""`GET /`: a browser is sent to the console, a program gets what the server offers."""

from __future__ import annotations

import httpx
import pytest

from stekker.app import Stekker


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_browser_is_sent_to_the_console_and_lands_on_its_login(api: httpx.AsyncClient) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    response = await api.get("/", headers=browser)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    landed = await api.get("/", headers=browser, follow_redirects=True)
    assert landed.status_code == 200 and "text/html" in landed.headers["content-type"]
    assert "/console/login" in str(landed.url) and "<form" in landed.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_program_gets_the_list_of_what_is_offered_and_every_link_answers(
    api: httpx.AsyncClient, server: Stekker
) -> None:
    for accept in ("application/json", "*/*"):  # httpx and curl alike
        response = await api.get("/", headers={"Accept": accept})
        assert response.status_code == 200, response.text
        index = response.json()
        assert index["name"] == "Stekker" and index["version"]
        links = index["links"]
        assert set(links) >= {"console", "docs", "openapi", "ocpi", "opendata", "health", "ocpp"}
        assert links["ocpp"]["href"] == f"ws://127.0.0.1:{server.ocpp_port}/ocpp/{{station_id}}"
    for key, link in links.items():
        if key == "ocpp":
            continue
        answer = await api.get(link["href"], follow_redirects=True)
        # OCPI wants a partner token: a 401 in its envelope is the right answer there
        assert answer.status_code == (401 if key == "ocpi" else 200), (key, answer.status_code)
    assert "/" in (await api.get("/openapi.json")).json()["paths"]
