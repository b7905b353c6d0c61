"""`GET /api/cluster`: the processes of this installation, and the health of what they share.

In a cluster (STEKKER_REDIS_URL set) the nodes are read from their heartbeats in Redis
(`stekker.cluster.nodes.live_nodes`): a node killed without a word drops out one lease after
its last beat. In one process there is one node, this one, described from its own state.
Redis and PostgreSQL health is what this process sees (the checks behind its `/ready`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from stekker.api.deps import CONFIGURE, Caller, allow, get_ctx
from stekker.api.probes import NOT_CONFIGURED, Dependency, Probes
from stekker.cluster.nodes import NodeStatus, live_nodes
from stekker.services.context import ServiceContext

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["meta"])


class NodeOut(BaseModel):
    """One process of the cluster as its last heartbeat described it."""

    node_id: str
    roles: list[str] = Field(description="gateway, api, worker.")
    this_node: bool = Field(description="The process that answered this request.")
    started_at: datetime
    heartbeat_at: datetime = Field(description="Its last heartbeat (in one process: now).")
    heartbeat_age_seconds: float
    stations: int = Field(description="Station sockets it holds (gateways).")
    leading: list[str] = Field(description="The work that runs once that this node leads now (its leases).")
    detail: dict[str, Any] = Field(default_factory=dict, description="What else the node reported.")


class HealthOut(BaseModel):
    """How a shared engine answered this process's last check."""

    status: str = Field(description="ok, down, or not configured (Redis in one process).")
    detail: str | None = Field(description="Why it is down.")
    latency_ms: float | None


class ClusterOut(BaseModel):
    """The installation's processes and the engines they share."""

    clustered: bool = Field(description="false: one process, no Redis (the embedded default).")
    node_id: str = Field(description="The process that answered.")
    nodes: list[NodeOut] = Field(description="Live nodes, oldest first.")
    nodes_source: str = Field(
        description="redis: from the nodes' heartbeats; local: this process alone (one process, "
        "or Redis unreachable: then the other nodes are unknown, not gone)."
    )
    redis: HealthOut
    database: HealthOut


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _out(node: NodeStatus, now: float, this: str) -> NodeOut:
    return NodeOut(
        node_id=node.node_id,
        roles=node.roles,
        this_node=node.node_id == this,
        started_at=_moment(node.started_at),
        heartbeat_at=_moment(node.heartbeat_at),
        heartbeat_age_seconds=round(max(0.0, now - node.heartbeat_at), 3),
        stations=node.stations,
        leading=node.leading,
        detail=node.detail,
    )


def _local(ctx: ServiceContext, probes: Probes, now: float) -> NodeStatus:
    """This process, described from its own state (no heartbeat needed)."""
    return NodeStatus(
        node_id=ctx.node.node_id,
        roles=ctx.node.role_names,
        started_at=probes.started_at,
        heartbeat_at=now,
        stations=probes.stations(),
        leading=ctx.leases.held(),
    )


def _health(dependency: Dependency) -> HealthOut:
    return HealthOut(status=dependency.status, detail=dependency.detail, latency_ms=dependency.latency_ms)


@router.get("/cluster", response_model=ClusterOut, summary="The cluster's nodes and shared engines")
async def cluster_status(
    request: Request,
    ctx: ServiceContext = Depends(get_ctx),
    caller: Caller = Depends(allow(*CONFIGURE)),
) -> ClusterOut:
    """Every live node (roles, last heartbeat, stations held, work it leads) and the health of
    Redis and PostgreSQL as this process sees them. `stekker cluster status` prints it."""
    probes: Probes = request.app.state.probes
    dependencies = await probes.dependencies()
    now = probes.wall()
    nodes: list[NodeStatus] | None = None
    if ctx.redis is not None and dependencies["redis"].status != "down":
        try:
            async with asyncio.timeout(probes.timeout * 2):
                nodes = await live_nodes(ctx.redis, ctx.keys)
        except Exception as exc:  # Redis went away meanwhile, or a node wrote something unreadable
            log.warning("cluster status: node list unreadable: %r", exc)
    source = "redis"
    if nodes is None:
        nodes, source = [_local(ctx, probes, now)], "local"
    elif not any(n.node_id == ctx.node.node_id for n in nodes):
        nodes.append(_local(ctx, probes, now))  # not beating yet (or not any more): still here
    redis = dependencies["redis"]
    return ClusterOut(
        clustered=ctx.redis is not None,
        node_id=ctx.node.node_id,
        nodes=[_out(n, now, ctx.node.node_id) for n in nodes],
        nodes_source=source,
        redis=_health(redis if ctx.redis is not None else Dependency(NOT_CONFIGURED)),
        database=_health(dependencies["database"]),
    )
