"""What every operator command shares: the API client, error reporting, tables, the console."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from stekker.config import get_settings

console = Console()


def api_client() -> httpx.Client:
    settings = get_settings()
    base = os.environ.get("STEKKER_API_URL", f"http://{settings.host}:{settings.http_port}")
    headers = {"Authorization": f"Bearer {settings.api_token}"} if settings.api_token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=settings.call_timeout + 10)


def call_api(method: str, path: str, **kwargs: Any) -> Any:
    try:
        with api_client() as client:
            response = client.request(method, path, **kwargs)
    except httpx.ConnectError:
        console.print("[red]cannot reach the Stekker API[/] (is `stekker serve` running? STEKKER_API_URL?)")
        raise typer.Exit(2) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/] {detail}")
        raise typer.Exit(1)
    return response.json()


def show_table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)
