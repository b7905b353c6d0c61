"""The process's listening sockets, bound before anything else happens.

A server whose port is taken must not touch the database: a second `stekker serve` started by
mistake on the same ports and database used to mark every station of the running one offline
before it found the port in use. So `bind_listeners` comes first, and the gateway and the
HTTP server then serve on the sockets it bound.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass

from stekker.config import Settings

# Connections that may wait for `accept` while the database is migrated and checked; the
# kernel holds them until the gateway and the HTTP server begin serving (a boot storm of
# stations reconnecting after our restart then finds the queue, not a refusal).
BACKLOG = 1024


class ListenerError(OSError):
    """A listener cannot be opened; its message is one line that names the setting to change."""


@dataclass
class Listeners:
    """The sockets `serve` listens on, each bound and listening; `None`: that listener is off."""

    ocpp: socket.socket | None
    ocpp_tls: socket.socket | None
    http: socket.socket

    def close(self) -> None:
        for sock in (self.ocpp, self.ocpp_tls, self.http):
            if sock is not None:
                sock.close()


def _explain(setting: str, host: str, port: int, exc: OSError) -> str:
    assignment = f"STEKKER_{setting.upper()}={port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{assignment} is in use on {host} (another process listens there)"
    if exc.errno == errno.EACCES:
        return f"{assignment}: binding a port below 1024 on {host} needs privileges"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"STEKKER_HOST={host} is not an address of this machine ({exc.strerror or exc})"
    return f"{assignment} on {host} cannot be opened: {exc.strerror or exc}"


def bind(setting: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, or `ListenerError` naming `setting`.

    SO_REUSEADDR lets a restart bind while the last run's connections linger in TIME_WAIT;
    on Linux it never lets two processes listen on one port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ListenerError(_explain(setting, host, port, exc)) from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenerError(_explain(setting, host, port, exc)) from exc
    sock.setblocking(False)
    return sock


def bind_listeners(settings: Settings, ocpp: bool = True) -> Listeners:
    """Every listener the settings ask for, or none: on a failure those already bound are closed.

    `ocpp=False`: a process without the gateway role, which listens on its HTTP port only."""
    host = settings.host
    bound: list[socket.socket] = []
    try:
        plain = None
        if ocpp and settings.ocpp_plain_enabled:
            plain = bind("ocpp_port", host, settings.ocpp_port)
            bound.append(plain)
        ocpp_tls = None
        if ocpp and settings.ocpp_tls_port is not None:
            ocpp_tls = bind("ocpp_tls_port", host, settings.ocpp_tls_port)
            bound.append(ocpp_tls)
        http = bind("http_port", host, settings.http_port)
    except BaseException:
        for sock in bound:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    return Listeners(plain, ocpp_tls, http)
