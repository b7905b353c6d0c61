"""`stekker` operator commands: bulk jobs and configuration templates."""

from __future__ import annotations

import typer

job_app = typer.Typer(
    help="Bulk jobs: one function on many stations, with per-station progress.", no_args_is_help=True
)
template_app = typer.Typer(
    help="Desired configuration per group, and the drift from it.", no_args_is_help=True
)
