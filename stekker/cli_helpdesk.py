"""`stekker` operator commands: the helpdesk."""

from __future__ import annotations

import typer

helpdesk_app = typer.Typer(help="Find a driver's session and stop and release it.", no_args_is_help=True)
