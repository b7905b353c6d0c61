"""Who this process is in a cluster: a node id and the roles it runs."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What a process does. A process may hold several; one process alone holds all three.

    - gateway: the OCPP listeners; holds station sockets and carries out commands for them.
    - api: the HTTP interfaces (operator API, console, OCPI, open data).
    - worker: background work that must run once (CDRs, OCPI pushes, jobs, chores).
    """

    GATEWAY = "gateway"
    API = "api"
    WORKER = "worker"


ALL_ROLES = frozenset(Role)


class RoleError(ValueError):
    """`--role` names something that is not a role; the message lists the ones there are."""


def parse_roles(text: str | None) -> frozenset[Role]:
    """ "gateway", "api,worker", ...; None or empty means every role (the single process)."""
    if text is None or not text.strip():
        return ALL_ROLES
    roles: set[Role] = set()
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            roles.add(Role(name))
        except ValueError:
            raise RoleError(
                f"--role {part.strip()!r} is not a role; choose from {', '.join(r.value for r in Role)} "
                "(a comma list combines them)"
            ) from None
    if not roles:
        raise RoleError("--role is empty; choose from gateway, api, worker")
    return frozenset(roles)


def new_node_id() -> str:
    """host-pid-random: readable in `stekker cluster status`, unique across restarts."""
    host = socket.gethostname().split(".")[0][:24] or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """This process: its id (STEKKER_NODE_ID, else generated at start) and its roles."""

    node_id: str
    roles: frozenset[Role] = ALL_ROLES

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def role_names(self) -> list[str]:
        return sorted(r.value for r in self.roles)

    @classmethod
    def single(cls) -> NodeInfo:
        """The one process of the embedded default."""
        return cls(new_node_id(), ALL_ROLES)
