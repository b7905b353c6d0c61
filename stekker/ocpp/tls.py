"""TLS for the OCPP gateway (security profiles 2 and 3): the server context, and which station
a client certificate names."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection

from stekker.config import Settings
from stekker.services.stations import Transport


class TlsConfigError(ValueError):
    """The TLS settings cannot give a working listener; the message names the setting."""


def _no_passphrase() -> str:
    # An encrypted key would otherwise make OpenSSL prompt on the terminal and hang `serve`.
    raise TlsConfigError("tls_key_file is encrypted: give the gateway an unencrypted key")


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ssl.SSLContext:
    """A server context with TLS 1.2 as the floor (OCPP 2.0.1 and the 1.6 security whitepaper
    require 1.2 or newer) and Python's default cipher list (ECDHE with AES-GCM or ChaCha20).

    With `client_ca_file` the server asks for a client certificate (profile 3) but does not
    require one, so profile-2 stations can use the same port; a certificate that is sent must
    verify against that CA or the handshake fails.
    """
    # OpenSSL's errors name neither the file nor the setting: check readability ourselves.
    _check_readable("tls_cert_file", cert_file)
    _check_readable("tls_key_file", key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except ssl.SSLError as exc:
        raise TlsConfigError(
            f"tls_cert_file {cert_file} and tls_key_file {key_file} are not a PEM certificate chain "
            f"and its matching private key (OpenSSL: {exc})"
        ) from None
    if client_ca_file is not None:
        _check_readable("tls_client_ca_file", client_ca_file)
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"tls_client_ca_file {client_ca_file} holds no PEM CA certificate (OpenSSL: {exc})"
            ) from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _check_readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"{setting} {path}: cannot read it ({exc.strerror})") from None


def context_from_settings(settings: Settings) -> ssl.SSLContext | None:
    """The context for the wss:// listener, or None when no TLS port is configured."""
    if settings.ocpp_tls_port is None:
        return None
    # Settings refuse a TLS port without both files; this keeps mypy and a hand-built Settings honest.
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        raise TlsConfigError("ocpp_tls_port is set: tls_cert_file and tls_key_file are required too")
    return server_context(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)


def common_name(peer_certificate: Mapping[str, Any] | None) -> str | None:
    """The subject CN of a certificate as `SSLSocket.getpeercert()` returns it.

    None without a (verified) certificate, and when the subject holds no CN or several: a
    certificate that names two stations names none.
    """
    if not peer_certificate:  # None: no certificate; {}: one that was not verified
        return None
    names = [
        value for rdn in peer_certificate.get("subject", ()) for key, value in rdn if key == "commonName"
    ]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


def transport_of(connection: ServerConnection) -> Transport:
    """What the handshake's socket says: TLS or not, and the verified client certificate's CN."""
    ssl_object: ssl.SSLObject | None = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return Transport(tls=False)
    return Transport(tls=True, client_cn=common_name(ssl_object.getpeercert()))
