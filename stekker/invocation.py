"""How a person here runs the `stekker` command, for the hints we print and log.

A hint must work when copied as it is. After `make demo` the command is `.venv/bin/stekker`
(the virtual environment is not activated, so a bare `stekker` is "command not found"); on a
machine where Stekker is installed on the PATH it is `stekker`.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from pathlib import Path


@cache  # a process keeps its working directory and PATH; answers to unauthenticated calls use it
def stekker_command() -> str:
    """`stekker` when the shell finds this installation's command on the PATH; else the
    command's path, relative to the working directory when it lies below it (`.venv/bin/stekker`
    from the project's root), else absolute; else `python -m stekker.cli` with this Python."""
    script = Path(sys.executable).parent / "stekker"  # a venv's, or the installation's, bin/
    if not script.is_file():
        return f"{sys.executable} -m stekker.cli"
    found = shutil.which("stekker")
    if found is not None and Path(found).resolve() == script.resolve():
        return "stekker"
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def activation_hint() -> str | None:
    """`source .venv/bin/activate` (the path as in `stekker_command`) when the command is not on
    the PATH and runs from a virtual environment: after it, a bare `stekker` works in that shell."""
    command = stekker_command()
    activate = Path(sys.executable).parent / "activate"
    if command == "stekker" or not activate.is_file():
        return None
    relative = os.path.relpath(activate)
    return f"source {activate if relative.startswith('..') else relative}"
