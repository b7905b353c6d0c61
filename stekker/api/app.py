"""The HTTP application: operator API now; OCPI, open data and the console mount here later."""

from __future__ import annotations

from fastapi import FastAPI

from stekker import __version__
from stekker.api import (
    diagnostics,
    errors,
    functions,
    helpdesk,
    inventory,
    jobs,
    monitoring,
    sessions,
    stations,
    templates,
    tokens,
    users,
    variables,
)
from stekker.services.context import ServiceContext


def create_http_app(ctx: ServiceContext) -> FastAPI:
    app = FastAPI(
        title="Stekker operator API",
        version=__version__,
        description="Stations, tokens and sessions of a Charge Point Operator; remote start and stop.",
    )
    app.state.ctx = ctx
    errors.install(app)
    app.include_router(stations.router)
    app.include_router(tokens.router)
    app.include_router(sessions.router)
    app.include_router(variables.router)
    for module in (users, inventory, functions, jobs, templates, diagnostics, helpdesk, monitoring):
        app.include_router(module.router)

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, object]:
        connected = ctx.commands.connected_stations() if ctx.commands is not None else []
        return {"status": "ok", "version": __version__, "stations_connected": len(connected)}

    return app
