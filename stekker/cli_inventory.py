"""`stekker` operator commands: locations, groups and imports."""

from __future__ import annotations

import typer

location_app = typer.Typer(help="Locations: the places stations stand.", no_args_is_help=True)
group_app = typer.Typer(
    help="Station groups (districts, batches) for selection and desired configuration.", no_args_is_help=True
)
import_app = typer.Typer(
    help="Import stations and tokens from CSV or JSON, with a dry run.", no_args_is_help=True
)
