"""`stekker cluster status`: the processes of this installation and the engines they share."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from stekker.clikit import call_api, console, show_table, with_output

cluster_app = typer.Typer(
    help="The processes of a cluster (gateway, api, worker) and the health of Redis and PostgreSQL.",
    no_args_is_help=True,
)

_COLUMNS = ["node_id", "roles", "here", "heartbeat", "stations", "leading", "started_at"]


def _row(node: dict[str, Any]) -> dict[str, Any]:
    return {
        **node,
        "here": node.get("this_node", False),
        "heartbeat": f"{float(node.get('heartbeat_age_seconds', 0)):.1f} s ago",
    }


def _health(name: str, health: dict[str, Any]) -> str:
    status = str(health.get("status"))
    colour = {"ok": "green", "down": "red"}.get(status, "yellow")
    words = f"[{colour}]{escape(status)}[/]"
    if health.get("detail"):
        words += f" ({escape(str(health['detail']))})"
    elif health.get("latency_ms") is not None:
        words += f" ({health['latency_ms']} ms)"
    return f"{name}: {words}"


@cluster_app.command("status")
@with_output
def status() -> None:
    """Live nodes (roles, last heartbeat, stations held, work they lead) and Redis/PostgreSQL health."""
    body: dict[str, Any] = call_api("GET", "/api/cluster")
    nodes = [_row(node) for node in body.get("nodes", [])]
    mode = "cluster" if body.get("clustered") else "one process (no Redis)"
    show_table(nodes, _COLUMNS, f"Stekker nodes: {mode}", data=body)
    console.print(_health("PostgreSQL" if body.get("clustered") else "database", body.get("database", {})))
    console.print(_health("Redis", body.get("redis", {})))
    if body.get("nodes_source") == "local" and body.get("clustered"):
        console.print("[yellow]Redis is unreachable from this node: other nodes are unknown, not gone.[/]")
