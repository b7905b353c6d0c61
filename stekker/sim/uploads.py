"""How a simulated station uploads a diagnostics or log file: a small generated text file over
HTTP(S), the way real stations do it. FTP locations are not supported (the upload fails)."""

from __future__ import annotations

import httpx

from stekker.sim.link import logger
from stekker.sim.timeutil import iso, utc_now


def generate_log(station_id: str, kind: str, lines: int = 40) -> bytes:
    """A plausible log: a header and some timestamped lines."""
    now = iso(utc_now())
    body = [f"# {kind} of simulated station {station_id}, generated {now}"]
    body += [f"{now} INFO  [sim] line {n}: connector state nominal" for n in range(1, lines + 1)]
    return ("\n".join(body) + "\n").encode()


async def upload(
    location: str, file_name: str, content: bytes, *, multipart: bool, timeout: float = 30.0
) -> bool:
    """Upload `content`; True when the server took it (2xx).

    multipart: POST multipart/form-data to `location` (common with 1.6 stations); otherwise
    PUT the raw bytes to `location/file_name` (the location is a directory)."""
    if not location.lower().startswith(("http://", "https://")):
        logger.warning("cannot upload %s to %s: only HTTP(S) is supported", file_name, location)
        return False
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            if multipart:
                files = {"file": (file_name, content, "text/plain")}
                response = await client.post(location, files=files)
            else:
                url = f"{location.rstrip('/')}/{file_name}"
                response = await client.put(url, content=content, headers={"Content-Type": "text/plain"})
    except httpx.HTTPError as exc:
        logger.warning("upload of %s to %s failed: %s", file_name, location, exc)
        return False
    if response.is_success:
        return True
    logger.warning("upload of %s to %s refused: %s", file_name, location, response.status_code)
    return False
