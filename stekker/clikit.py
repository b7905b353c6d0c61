"""What every operator command shares: the API client, error reporting, tables, the console.

The commands authenticate with `STEKKER_API_TOKEN` (environment, else `api_token` in
stekker.toml): a user's API token (`stk_...`, from `stekker user token NAME` or
`stekker user login NAME`) acts with that user's role; the server's own bootstrap token
acts as admin. Without users and without a token the API is open (single-operator demo).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stekker.config import get_settings

console = Console()


def api_token() -> str | None:
    """The token the CLI sends (read at each call, so a freshly exported one counts)."""
    return os.environ.get("STEKKER_API_TOKEN") or get_settings().api_token


def api_client(token: str | None = None) -> httpx.Client:
    settings = get_settings()
    base = os.environ.get("STEKKER_API_URL", f"http://{settings.host}:{settings.http_port}")
    token = token or api_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # a reset whose answer was lost waits for the station's boot (STEKKER_RESET_BOOT_WINDOW)
    timeout = settings.call_timeout + settings.reset_boot_window + 10
    return httpx.Client(base_url=base, headers=headers, timeout=timeout)


def call_api(method: str, path: str, **kwargs: Any) -> Any:
    try:
        with api_client() as client:
            response = client.request(method, path, **kwargs)
    except httpx.ConnectError:
        console.print("[red]cannot reach the Stekker API[/] (is `stekker serve` running? STEKKER_API_URL?)")
        raise typer.Exit(2) from None
    return _answer(response)


# a bound on pages followed, so that a server bug cannot loop the CLI forever
MAX_PAGES = 100_000


def call_api_pages(path: str, params: dict[str, Any], *, every: bool) -> list[Any]:
    """A list's first page, or with `every` all its rows, by following `Link: rel="next"`."""
    rows: list[Any] = []
    try:
        with api_client() as client:
            response = client.get(path, params=params)
            for _ in range(MAX_PAGES):
                rows.extend(_answer(response))
                following = response.links.get("next", {}).get("url")
                if not every or following is None:
                    break
                response = client.get(response.url.join(following))
    except httpx.ConnectError:
        console.print("[red]cannot reach the Stekker API[/] (is `stekker serve` running? STEKKER_API_URL?)")
        raise typer.Exit(2) from None
    return rows


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        # the detail may echo user input: print it as text, never as rich markup
        console.print(Text.assemble((str(response.status_code), "red"), " ", str(detail)))
        if response.status_code == 401:
            console.print(
                "Set STEKKER_API_TOKEN to your API token (`stekker user login NAME` gives one).",
                markup=False,
            )
        raise typer.Exit(1)
    return response.json()


def show_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
    console.print(table)
