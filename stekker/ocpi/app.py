"""Mount the OCPI modules on the HTTP app, and announce them in our version details."""

from __future__ import annotations

from fastapi import FastAPI

from stekker.ocpi import (
    cdrs,
    chargingprofiles,
    commands,
    credentials,
    envelope,
    hubclientinfo,
    locations,
    request_ids,
    sessions,
    tariffs,
    tokens,
    versions,
)

#: (router module, identifier, our role) of every module we serve besides versions/credentials
_MODULES = (
    (locations, "locations", "SENDER"),
    (tariffs, "tariffs", "SENDER"),
    (sessions, "sessions", "SENDER"),
    (cdrs, "cdrs", "SENDER"),
    (tokens, "tokens", "RECEIVER"),
    (commands, "commands", "RECEIVER"),
    (chargingprofiles, "chargingprofiles", "RECEIVER"),
    (hubclientinfo, "hubclientinfo", "RECEIVER"),
)


def include(app: FastAPI) -> None:
    envelope.install(app)
    # added after the app's other middleware, so outermost: the IDs reach every answer (the 413 too)
    app.add_middleware(request_ids.RequestIds)
    app.include_router(versions.router)
    app.include_router(credentials.router)
    for module, identifier, role in _MODULES:
        app.include_router(module.router)
        versions.register_module(identifier, role)
