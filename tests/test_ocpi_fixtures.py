"""The official OCPI 2.2.1 examples of the transport layer and the credentials module: each
parses into our wire models, and what we send has their structure."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from stekker.app import Stekker
from stekker.ocpi.credentials import Credentials
from stekker.services import ocpi_partners
from tests.test_ocpi_locations import shape_problems

OCPI = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "ocpi" / "2.2.1"


def example(name: str) -> Any:
    return json.loads((OCPI / name).read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in OCPI.glob("credentials_example*.json")))
def test_every_credentials_example_parses(name: str) -> None:
    parsed = Credentials.model_validate(example(name))
    assert parsed.token and parsed.url.startswith("https://") and parsed.roles


async def test_our_versions_details_credentials_and_envelope_have_the_examples_shape(
    server: Stekker, api: httpx.AsyncClient
) -> None:
    await ocpi_partners.add_registered_partner(
        server.ctx, name="P", country_code="NL", party_id="ABC", token="fixture-token"
    )
    headers = {"Authorization": "Token " + base64.b64encode(b"fixture-token").decode()}
    versions = (await api.get("/ocpi/versions", headers=headers)).json()
    details = (await api.get("/ocpi/2.2.1", headers=headers)).json()
    credentials = (await api.get("/ocpi/2.2.1/credentials", headers=headers)).json()
    envelope = example("transport_and_format_version_details_example.json")
    for ours in (versions, details, credentials):
        assert set(ours) == set(envelope), ours  # data, status_code, status_message, timestamp
        assert ours["timestamp"].endswith("Z") and ours["status_code"] == 1000
    assert shape_problems(versions["data"], [example("versions_info_example.json")]) == []
    assert shape_problems(details["data"], [example("version_details_example.json"), envelope["data"]]) == []
    examples = [example(p.name) for p in OCPI.glob("credentials_example*.json")]
    assert shape_problems(credentials["data"], examples) == []
    assert Credentials.model_validate(credentials["data"]).token == "fixture-token"
