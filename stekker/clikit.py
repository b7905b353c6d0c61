"""What every operator command shares: the API client, error reporting, output, the console.

The commands authenticate with `STEKKER_API_TOKEN` (environment, else `api_token` in
stekker.toml): a user's API token (`stk_...`, from `stekker user token NAME` or
`stekker user login NAME`) acts with that user's role; the server's own bootstrap token
acts as admin. Without users and without a token the API is open (single-operator demo).

Output: every list and show command takes `--output table|json|csv` (`with_output`), and
prints its rows with `show_table` or `show_record`:
- `table` on a terminal: a table whose long values wrap (never cut), times in the local time
  zone to the second, yes/no for booleans;
- `table` piped or redirected: one line per row, columns padded, every value in full and times
  exactly as the API gives them (ISO 8601, UTC), no title, no frame: for grep, awk and cut;
- `json`: the API's objects unchanged; `csv`: the table's columns with a header (RFC 4180
  quoting; a text that a spreadsheet would run as a formula gets a leading apostrophe, as in the
  exports). With json and csv, stdout carries the data only: notes go to stderr.
Errors always go to stderr.
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import json
import os
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import click
import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from stekker.config import get_settings
from stekker.invocation import stekker_command

console = Console()
#: errors, whatever the output form: never mixed into the data on stdout
err_console = Console(stderr=True)

R = TypeVar("R")


class Output(StrEnum):
    """How a list or show command prints its data (`--output`)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (full values when piped; local times on a terminal), json (the API's objects) "
        "or csv (the table's columns).",
    ),
]

_output: ContextVar[Output] = ContextVar("stekker_cli_output", default=Output.TABLE)
# json and csv print one document: the command's first table (or the data it names)
_printed: ContextVar[bool] = ContextVar("stekker_cli_printed", default=False)


def with_output(command: Callable[..., R]) -> Callable[..., R]:
    """Give a list or show command the `--output` option; `show_table` and `show_record` print
    in the chosen form. Put it under the `@app.command(...)` decorator."""
    signature = inspect.signature(command, eval_str=True)
    if "output" in signature.parameters:
        raise TypeError(f"{command.__name__} has its own `output` parameter")

    @functools.wraps(command)
    def run(*args: Any, output: Output = Output.TABLE, **kwargs: Any) -> R:
        chosen, printed = _output.set(output), _printed.set(False)
        machine = output is not Output.TABLE
        console.stderr = machine  # the notes around the data; stdout is the data alone
        try:
            return command(*args, **kwargs)
        finally:
            console.stderr = False
            _output.reset(chosen)
            _printed.reset(printed)

    extra = inspect.Parameter(
        "output", inspect.Parameter.KEYWORD_ONLY, default=Output.TABLE, annotation=OutputOption
    )
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra]
    )
    run.__annotations__ = {**command.__annotations__, "output": OutputOption}
    return run


def choose_output(output: Output) -> None:
    """Switch the running command's output, e.g. for an older flag such as `cdr list --json`."""
    _output.set(output)
    console.stderr = output is not Output.TABLE


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
        unreachable()
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
        unreachable()
    return rows


def unreachable() -> NoReturn:
    """Say that the API cannot be reached, and end the command (exit code 2)."""
    serve = escape(f"{stekker_command()} serve")
    err_console.print(f"[red]cannot reach the Stekker API[/] (is `{serve}` running? STEKKER_API_URL?)")
    raise typer.Exit(2)


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        # the detail may echo user input: print it as text, never as rich markup
        err_console.print(Text.assemble((str(response.status_code), "red"), " ", str(detail)))
        if response.status_code == 401:
            err_console.print(
                f"Set STEKKER_API_TOKEN to your API token (`{stekker_command()} user login NAME` gives one).",
                markup=False,
            )
        raise typer.Exit(1)
    return response.json()


# ---- output -------------------------------------------------------------------------------------


def show_table(rows: list[dict[str, Any]], columns: list[str], title: str, *, data: Any = None) -> None:
    """Rows in the chosen output form (see the module docstring). `data`: what `--output json`
    prints instead of the rows (the API's whole answer, when the rows are made from it)."""
    output = _output.get()
    if output is not Output.TABLE:
        if not _printed.get():
            _printed.set(True)
            if output is Output.JSON:
                _print_json(rows if data is None else data)
            else:
                _print_csv(rows, columns)
        return
    if console.is_terminal:
        cells = [[_cell(row.get(c), local_times=True) for c in columns] for row in rows]
        table = Table(title=title)
        for index, column in enumerate(columns):
            if index == 0:  # what one types next (an id): whole on one line, the others make room
                widest = max((len(line[0]) for line in cells), default=0)
                table.add_column(column, no_wrap=True, min_width=min(max(widest, len(column)), 40))
            else:
                table.add_column(column, overflow="fold")
        for line in cells:
            table.add_row(*(Text(cell) for cell in line))
        console.print(table)
        return
    _print_plain([columns, *([_cell(row.get(c)) for c in columns] for row in rows)])


def show_record(record: dict[str, Any], fields: list[str], title: str, *, data: Any = None) -> None:
    """One object, a field a line (`--output json`: the object, or `data`; csv: a header and one
    row)."""
    output = _output.get()
    if output is not Output.TABLE:
        show_table([record], fields, title, data=record if data is None else data)
        return
    if console.is_terminal:
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for field in fields:
            table.add_row(field, Text(_cell(record.get(field), local_times=True)))
        console.print(table)
        return
    _print_plain([[field, _cell(record.get(field))] for field in fields])


def _print_plain(lines: list[list[str]]) -> None:
    """Columns padded to their widest value, nothing cut; a newline in a value is written `\\n`,
    so that a row stays one line."""
    lines = [[cell.replace("\r", "\\r").replace("\n", "\\n") for cell in line] for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))] if lines else []
    for line in lines:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _print_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from stekker.export.formats import csv_cell  # the exports' rule; pyarrow only when asked

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(_csv_text(row.get(c))) for c in columns])
    sys.stdout.write(buffer.getvalue())
    sys.stdout.flush()


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")


def _cell(value: Any, *, local_times: bool = False) -> str:
    """A value as a table shows it; `local_times`: an ISO 8601 time from the API (UTC when it
    names no offset) in the local time zone, to the second."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(_cell(v, local_times=local_times) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    text = str(value)
    if local_times and isinstance(value, str) and _TIMESTAMP.fullmatch(text):
        return local_time(text)
    return text


def local_time(text: str) -> str:
    """An ISO 8601 time (UTC when it names no offset) in the local time zone, to the second."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
