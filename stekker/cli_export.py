"""`stekker export KIND ...`: all historical data of one kind to a file, through the running API.

Token uids are pseudonymised unless `--reveal-tokens` is given (operator and admin only). A
file made from a shell tends to travel (to a researcher, into a spreadsheet, as an e-mail
attachment), and a driver's card uid is personal data; a pseudonym keeps every analysis by
driver possible. Revealing is a deliberate choice, and the audit log records it either way.

The command first asks how many rows the export holds (for the progress bar), then streams the
file to `FILE.part` and renames it to FILE when complete, so a broken download never looks
like a finished export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from stekker.clikit import api_client, call_api, console, show_table, unreachable, with_output
from stekker.export.records import KINDS, RecordKind

export_app = typer.Typer(
    help="Export all historical data of one kind (sessions, CDRs, meter values, ...) as CSV, JSON lines "
    "or Parquet; `stekker export columns KIND` documents the columns.",
    no_args_is_help=True,
)


class CsvRecords:
    """Counts the records of a CSV stream as it arrives: line ends outside quotes (a quoted cell
    may hold line breaks; a quote inside one is doubled, which keeps the count right)."""

    def __init__(self) -> None:
        self.quoted = False
        self.lines = 0

    def feed(self, chunk: bytes) -> None:
        for index, part in enumerate(chunk.split(b'"')):
            if index:
                self.quoted = not self.quoted
            if not self.quoted:
                self.lines += part.count(b"\n")

    @property
    def records(self) -> int:
        return max(0, self.lines - 1)  # the header


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


def _fail(response: httpx.Response) -> None:
    response.read()
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    console.print(Text.assemble((str(response.status_code), "red"), " ", str(detail)))
    raise typer.Exit(1)


def _progress(fmt: str) -> Progress:
    if fmt == "parquet":  # rows are inside row groups: count bytes instead
        return Progress(
            TextColumn("[bold]{task.description}[/]"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
    return Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _download(kind: str, params: dict[str, Any], part: Path, total: int) -> int | None:
    """Stream the export to `part`; the rows written (None for Parquet: counted afterwards)."""
    fmt = params["format"]
    counter = CsvRecords() if fmt == "csv" else None
    lines = 0
    with (
        api_client() as client,
        client.stream("GET", f"/api/exports/{kind}", params=params, timeout=httpx.Timeout(60, read=600)) as r,
    ):
        if r.status_code >= 400:
            _fail(r)
        with _progress(fmt) as progress, part.open("wb") as out:
            task = progress.add_task(
                kind, total=None if fmt == "parquet" else total, note=f"{total:,} rows".replace(",", " ")
            )
            for chunk in r.iter_bytes():
                out.write(chunk)
                if counter is not None:
                    counter.feed(chunk)
                    progress.update(task, completed=counter.records)
                elif fmt == "jsonl":
                    lines += chunk.count(b"\n")
                    progress.update(task, completed=lines)
                else:
                    progress.update(task, advance=len(chunk))
    if counter is not None:
        return counter.records
    return lines if fmt == "jsonl" else None


def export_kind(
    kind: str,
    *,
    from_: str | None,
    to: str | None,
    fmt: str,
    out: Path,
    station: str | None,
    location: int | None,
    partner: int | None,
    reveal_tokens: bool,
    force: bool,
) -> None:
    """Count, then stream the export of `kind` to `out` with a progress bar."""
    if out.exists() and not force:
        console.print(f"{out} exists: choose another --out, or --force to overwrite it", markup=False)
        raise typer.Exit(1)
    filters: dict[str, Any] = {
        name: value
        for name, value in (
            ("from", from_),
            ("to", to),
            ("station", station),
            ("location", location),
            ("partner", partner),
        )
        if value is not None
    }
    total = int(call_api("GET", f"/api/exports/{kind}/count", params=filters)["rows"])
    params = {**filters, "format": fmt, "pseudonymise": "false" if reveal_tokens else "true"}
    part = out.with_name(out.name + ".part")
    try:
        rows = _download(kind, params, part, total)
    except httpx.ConnectError:
        part.unlink(missing_ok=True)
        unreachable()
    except (httpx.HTTPError, OSError) as exc:
        part.unlink(missing_ok=True)
        console.print(Text.assemble(("the export broke off: ", "red"), str(exc) or type(exc).__name__))
        raise typer.Exit(1) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(out)
    if rows is None:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # only for Parquet: slow to import

        rows = int(pq.ParquetFile(out).metadata.num_rows)
    tokens = "token uids as they are" if reveal_tokens else "token uids pseudonymised"
    console.print(
        f"{rows} row(s) of {kind} written to {out} ({_size(out.stat().st_size)}); {tokens}", markup=False
    )


FORMAT_HELP = "csv, jsonl (JSON lines) or parquet."
FROM_HELP = (
    "Start (inclusive) of the period, on the kind's time column (`stekker export columns`): "
    "2026-01-01 (midnight UTC) or a time such as 2026-01-01T08:00:00Z."
)
REVEAL_HELP = (
    "Write token uids and contract ids as they are (operator and admin only). Without it they are "
    "pseudonymised: the file may travel, and a card uid is personal data."
)


def _register(kind: RecordKind) -> None:
    def command(
        out: Annotated[Path, typer.Option("--out", "-o", help="The file to write.")],
        from_: Annotated[str | None, typer.Option("--from", help=FROM_HELP)] = None,
        to: Annotated[str | None, typer.Option("--to", help="End (exclusive), as --from.")] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "csv",
        station: Annotated[str | None, typer.Option(help="Only this station.")] = None,
        location: Annotated[int | None, typer.Option(help="Only the stations at this location (id).")] = None,
        partner: Annotated[
            int | None,
            typer.Option(help="Only this OCPI partner's tokens (sessions, cdrs, authorization_requests)."),
        ] = None,
        reveal_tokens: Annotated[bool, typer.Option("--reveal-tokens", help=REVEAL_HELP)] = False,
        force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
    ) -> None:
        export_kind(
            kind.name,
            from_=from_,
            to=to,
            fmt=fmt,
            out=out,
            station=station,
            location=location,
            partner=partner,
            reveal_tokens=reveal_tokens,
            force=force,
        )

    export_app.command(kind.name, help=f"{kind.title}. {kind.description}")(command)


@export_app.command("columns")
@with_output
def columns(
    kind: Annotated[str | None, typer.Argument(help="A kind; without it: every kind.")] = None,
) -> None:
    """The columns of a kind (name, type, personal data, meaning), or every kind."""
    kinds: list[dict[str, Any]] = call_api("GET", "/api/exports")
    if kind is None:
        rows = [
            {"kind": k["kind"], "period on": k["period_column"], "filters": k["filters"], "what": k["title"]}
            for k in kinds
        ]
        show_table(rows, ["kind", "period on", "filters", "what"], "What can be exported", data=kinds)
        return
    chosen = [k for k in kinds if k["kind"] == kind]
    if not chosen:
        console.print(
            f"no export kind {kind!r}; the kinds are: {', '.join(k['kind'] for k in kinds)}", markup=False
        )
        raise typer.Exit(1)
    show_table(chosen[0]["columns"], ["name", "type", "personal", "description"], chosen[0]["title"])


for _kind in KINDS.values():
    _register(_kind)
