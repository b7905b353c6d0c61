"""A fresh install's login page says how to create the first user, with the command as it
is typed where the server runs (`.venv/bin/stekker` after `make demo`, not a bare `stekker`
that the shell does not find)."""

from __future__ import annotations

import html

import httpx
import pytest

from stekker.invocation import stekker_command


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("lang", "words"), [("nl", "user add NAAM --role admin"), ("en", "user add NAME --role admin")]
)
async def test_the_first_user_hint_names_the_command_as_typed_here(
    api: httpx.AsyncClient, lang: str, words: str
) -> None:
    page = await api.get("/console/login", params={"lang": lang})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f"{stekker_command()} {words}" in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_hostile_lang_does_not_break_the_hint(api: httpx.AsyncClient) -> None:
    page = await api.get("/console/login", params={"lang": "<script>x</script>"})
    assert page.status_code in (200, 400)
    assert "<script>x</script>" not in page.text
