"""HTTP caching for the feeds: ETag and If-None-Match (304), Cache-Control, gzip on request."""

from __future__ import annotations

from fastapi import Request, Response

from stekker.opendata.cache import Rendered


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding lists gzip with a q above 0."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


def respond(
    request: Request,
    rendered: Rendered,
    *,
    max_age: int,
    headers: dict[str, str] | None = None,
    always_gzip: bool = False,
) -> Response:
    """The body, or 304 when the client already has it; gzip when the client takes it (a dump
    file is gzip whatever it asks: `always_gzip`)."""
    common = {
        "ETag": rendered.etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",  # open data: any web page may read it
        **(headers or {}),
    }
    match = request.headers.get("if-none-match")
    if match is not None and (match.strip() == "*" or rendered.etag in _etags(match)):
        return Response(status_code=304, headers=common)
    if always_gzip:
        return Response(rendered.gzipped(), media_type=rendered.media_type, headers=common)
    if accepts_gzip(request):
        common["Content-Encoding"] = "gzip"
        return Response(rendered.gzipped(), media_type=rendered.media_type, headers=common)
    return Response(rendered.body, media_type=rendered.media_type, headers=common)
