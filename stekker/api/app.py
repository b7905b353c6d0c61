"""The HTTP application: operator API now; OCPI, open data and the console mount here later."""

from __future__ import annotations

from fastapi import FastAPI

from stekker import __version__
from stekker.api import (
    cdrs,
    cluster,
    deps,
    diagnostics,
    docs_pages,
    error_schema,
    errors,
    exports,
    functions,
    helpdesk,
    inventory,
    jobs,
    monitoring,
    ocpi_partners,
    openapi_meta,
    prices,
    problem_reports,
    reports,
    root,
    sessions,
    stations,
    tariffs,
    templates,
    tokens,
    users,
    variables,
)
from stekker.api.body_limit import BodyLimit, BodyLimitMiddleware
from stekker.api.probes import Probes, install_probes
from stekker.api.redaction import RedactResponses
from stekker.logconfig import CorrelateRequests
from stekker.ocpi import app as ocpi_app
from stekker.ocpi import envelope as ocpi_envelope
from stekker.opendata import datex2_feeds  # noqa: F401  (its routes join the open-data router)
from stekker.opendata import feeds as opendata_feeds
from stekker.opendata.cache import OpenDataCache
from stekker.opendata.ratelimit import RateLimit, TokenBuckets
from stekker.services import imports
from stekker.services.context import ServiceContext
from stekker.services.stop_release import FlowBook
from stekker.web import router as web_router
from stekker.web.auth import MAX_FORM_BYTES

# Room for multipart framing and for the routes' own, exact checks to answer first (they say
# more, e.g. "the file is over 5 MB: split it"); the middleware is the backstop before them.
_ROUTE_MARGIN = 64 * 1024


def _ocpi_too_large(message: str) -> dict[str, object]:
    return ocpi_envelope.envelope(None, ocpi_envelope.CLIENT_ERROR, message)


def body_limits(ctx: ServiceContext) -> list[BodyLimit]:
    """Request body budgets by path; every other path gets `http_max_body_bytes` (JSON)."""
    s = ctx.settings
    return [
        BodyLimit("/upload/diagnostics/", s.upload_max_bytes + _ROUTE_MARGIN),  # stations' log files
        BodyLimit("/api/import/", imports.MAX_BYTES + _ROUTE_MARGIN),  # CSV / JSON inventory imports
        BodyLimit(ocpi_envelope.PREFIX + "/", s.http_max_body_bytes, _ocpi_too_large),
        BodyLimit("/console/", MAX_FORM_BYTES + _ROUTE_MARGIN),  # the console's small forms
        BodyLimit("/p/", MAX_FORM_BYTES + _ROUTE_MARGIN),
    ]


def create_http_app(
    ctx: ServiceContext,
    helpdesk_flows: FlowBook | None = None,
    opendata: OpenDataCache | None = None,
    probes: Probes | None = None,
) -> FastAPI:
    """The operator's HTTP application; `probes` are this process's /health, /ready and
    /metrics (see `stekker.api.probes`; none given: the database and Redis checks only)."""
    app = FastAPI(
        title=openapi_meta.TITLE,
        version=__version__,
        docs_url=None,  # docs_pages serves /docs and /redoc with their scripts from the package
        redoc_url=None,
        description=openapi_meta.DESCRIPTION,
        openapi_tags=openapi_meta.TAGS,
    )
    app.state.ctx = ctx
    app.state.helpdesk_flows = helpdesk_flows or FlowBook()
    errors.install(app)
    s = ctx.settings
    app.state.opendata = opendata or OpenDataCache(ctx)
    app.state.opendata_limits = (
        s.opendata_requests_per_minute,
        s.opendata_burst,
        s.opendata_streams_per_client,
    )
    app.state.opendata_streams = {}  # client address → open live streams
    app.add_middleware(CorrelateRequests)  # a correlation id in every log line of a request
    # per client address, counted cluster-wide when Redis is configured
    buckets = TokenBuckets.shared(ctx.redis, ctx.keys, s.opendata_requests_per_minute, s.opendata_burst)
    app.add_middleware(RateLimit, buckets=buckets)
    app.add_middleware(RedactResponses)  # the privacy policy on every JSON answer under /api/
    # outermost: a body over its limit is refused before routing, authentication and parsing
    app.add_middleware(BodyLimitMiddleware, default=s.http_max_body_bytes, limits=body_limits(ctx))
    # before stations: its GET /api/stations/{station_id} would take /api/stations/functions
    app.include_router(functions.router)
    app.include_router(stations.router)
    app.include_router(tokens.router)
    app.include_router(sessions.router)
    app.include_router(variables.router)
    for module in (
        users,
        inventory,
        jobs,
        templates,
        diagnostics,
        helpdesk,
        monitoring,
        tariffs,
        cdrs,
        reports,
        problem_reports,
        prices,
        ocpi_partners,
        exports,
        opendata_feeds,
        cluster,
    ):
        app.include_router(module.router)
    ocpi_app.include(app)  # /ocpi: the roaming partners' interface
    error_schema.install(app)  # after OCPI's handlers, which keep answering under /ocpi
    app.include_router(web_router)  # /console (operators), /p/{evse_uid} (drivers), /assets

    app.include_router(root.router)  # GET /: a browser to the console, a program to this list
    app.include_router(docs_pages.router)  # /docs, /redoc: work offline

    install_probes(app, probes or Probes(ctx))  # /health, /ready, /metrics: no token, no body

    deps.annotate_roles(app)  # after every route: each states the roles it allows
    error_schema.document(app)  # and the errors it can answer, with one schema

    return app
