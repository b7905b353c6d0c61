"""Every HTTP request we make to a roaming partner goes through `partner_client`.

The partner chooses the URLs (its versions URL, its endpoints, a command's `response_url`),
so the client guards where it connects: the host is resolved once, every address it resolves
to is checked (`stekker.domain.partner_urls.address_problem`), and the connection is made to
that checked address, so a DNS answer that changes between the check and the connect (DNS
rebinding) cannot lead it elsewhere. The URL, the Host header and the TLS server name stay
the partner's host name, so certificates are verified as usual. Loopback and private
addresses are allowed only with `STEKKER_OCPI_ALLOW_PRIVATE_URLS` (a test set-up, or partners
inside one private network). No proxy from the environment and no redirects are followed.

Every request carries a new `X-Request-ID` and an `X-Correlation-ID` (OCPI 2.2.1, "Unique
message IDs", `id_headers`): the correlation ID of the partner's request that caused it when
there is one (our OCPI edge sets it for the request's duration, `correlated`), else one new
ID for the whole exchange (the handshake's GETs and POST share it).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import typing
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

import httpcore
import httpx

from stekker.config import Settings
from stekker.domain.partner_urls import address_problem

#: host, port → the addresses to connect to (injectable for tests)
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: the X-Correlation-ID of the exchange this task works for (None: not in one)
_correlation: ContextVar[str | None] = ContextVar("ocpi_correlation_id", default=None)


@contextmanager
def correlated(correlation_id: str | None = None) -> Iterator[str]:
    """Requests made inside share `correlation_id`: the given one, the one already in force,
    or a new one. Tasks started inside inherit it (asyncio copies the context)."""
    chosen = correlation_id or _correlation.get() or str(uuid.uuid4())
    token = _correlation.set(chosen)
    try:
        yield chosen
    finally:
        _correlation.reset(token)


def current_correlation() -> str | None:
    """The X-Correlation-ID of the exchange in force, if any."""
    return _correlation.get()


def id_headers() -> dict[str, str]:
    """The ID headers of one request: a new X-Request-ID, the exchange's X-Correlation-ID
    (a new one when the request stands alone)."""
    request_id = str(uuid.uuid4())
    return {"X-Request-ID": request_id, "X-Correlation-ID": _correlation.get() or request_id}


class AddressRefused(httpcore.ConnectError):
    """The partner's host resolves to an address we do not connect to (no socket was opened)."""


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the order the system resolver gives them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking the host before it connects."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve) -> None:
        self._allow_private = allow_private
        self._resolve = resolver
        self._inner: httpcore.AsyncNetworkBackend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        if not self._allow_private:
            # every address must pass: a host that also resolves inside our network is refused
            for address in addresses:
                problem = address_problem(address)
                if problem is not None:
                    raise AddressRefused(
                        f"{host} resolves to {address}: {problem} "
                        "(allowed only with STEKKER_OCPI_ALLOW_PRIVATE_URLS)"
                    )
        return await self._inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("no Unix sockets towards partners")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One TLS context for all clients (building one costs more than a quick partner's answer)."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that connects through `GuardedBackend`."""

    def __init__(self, allow_private: bool, resolver: Resolver = resolve) -> None:
        super().__init__(verify=_tls(), trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_tls(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow_private, resolver),
        )


def partner_client(
    settings: Settings, *, timeout: float | None = None, resolver: Resolver = resolve
) -> httpx.AsyncClient:
    """A client for calls to partners (the caller closes it)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings.ocpi_allow_private_urls, resolver),
        timeout=settings.ocpi_partner_timeout if timeout is None else timeout,
        trust_env=False,
        follow_redirects=False,
    )


def refused(exc: BaseException) -> bool:
    """Whether an httpx error is the guard refusing an address (not the partner failing)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
