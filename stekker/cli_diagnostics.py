"""`stekker` operator commands: diagnostics and logs."""

from __future__ import annotations

import typer

diagnostics_app = typer.Typer(
    help="Request diagnostics and logs from stations and download them.", no_args_is_help=True
)
