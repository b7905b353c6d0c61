"""Every command group without a subcommand shows its help (not "Missing command")."""

from __future__ import annotations

from typer.main import get_command
from typer.testing import CliRunner

from stekker.cli import app


def test_every_group_without_a_subcommand_prints_its_help() -> None:
    root = get_command(app)
    groups = [name for name, command in root.commands.items() if hasattr(command, "commands")]  # type: ignore[attr-defined]
    assert {"station", "token", "session", "user", "cdr"} <= set(groups)
    runner = CliRunner()
    for name in groups:
        result = runner.invoke(app, [name], prog_name="stekker")
        assert "Missing command" not in result.output, name
        assert f"Usage: stekker {name}" in result.output.replace("  ", " "), (name, result.output)
        assert "Commands" in result.output, name
