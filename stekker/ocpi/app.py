"""Mount the OCPI modules on the HTTP app, and announce them in our version details."""

from __future__ import annotations

from fastapi import FastAPI

from stekker.ocpi import credentials, envelope, versions


def include(app: FastAPI) -> None:
    envelope.install(app)
    app.include_router(versions.router)
    app.include_router(credentials.router)
