"""Reading the first file of a multipart/form-data body as a stream, in constant memory.

Stations upload diagnostics as a form POST with one file part; Starlette's form parser would
spool the whole file first (and needs python-multipart), so the upload endpoint reads the
file's bytes straight from the request stream with this small parser instead.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

_MAX_HEADERS = 16 * 1024
_BOUNDARY = re.compile(r'boundary="?([^";,]{1,70})"?', re.IGNORECASE)
_FILENAME_STAR = re.compile(r"filename\*\s*=\s*[\w-]*'[\w-]*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not the multipart/form-data it claims to be; the message says why."""


@dataclass(frozen=True, slots=True)
class FilePart:
    filename: str | None
    content_type: str | None


def boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise MultipartError("multipart/form-data without a boundary")
    return match.group(1)


def _filename(disposition: str) -> str | None:
    star = _FILENAME_STAR.search(disposition)
    if star:
        return unquote(star.group(1).strip())
    plain = _FILENAME.search(disposition)
    if plain:
        return plain.group(1) if plain.group(1) is not None else plain.group(2)
    return None


class MultipartReader:
    """Finds the first part that carries a file (`filename=` in its Content-Disposition) and
    streams its content; form fields before it are skipped."""

    def __init__(self, body: AsyncIterator[bytes], boundary: str) -> None:
        self._body = body.__aiter__()
        self._first = b"--" + boundary.encode("latin-1")
        self._delimiter = b"\r\n" + self._first
        self._buf = b""

    async def _more(self) -> None:
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            raise MultipartError("the body ended before the multipart parts did") from None
        self._buf += chunk

    async def _skip_to(self, marker: bytes) -> None:
        while (index := self._buf.find(marker)) < 0:
            self._buf = self._buf[-(len(marker) - 1) :]
            await self._more()
        self._buf = self._buf[index + len(marker) :]

    async def _headers(self) -> dict[str, str]:
        while len(self._buf) < 2:
            await self._more()
        if self._buf.startswith(b"--"):
            raise MultipartError("the form has no file part")
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > _MAX_HEADERS:
                raise MultipartError("part headers are too long")
            await self._more()
        # the buffer starts with the CRLF that ends the boundary line
        raw, self._buf = self._buf[2:end], self._buf[end + 4 :]
        headers: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return headers

    async def file(self) -> tuple[FilePart, AsyncIterator[bytes]]:
        await self._skip_to(self._first)
        while True:
            headers = await self._headers()
            filename = _filename(headers.get("content-disposition", ""))
            if filename is not None or "filename" in headers.get("content-disposition", ""):
                return FilePart(filename, headers.get("content-type")), self._content()
            await self._skip_to(self._delimiter)

    async def _content(self) -> AsyncIterator[bytes]:
        keep = len(self._delimiter) - 1
        while True:
            index = self._buf.find(self._delimiter)
            if index >= 0:
                if index:
                    yield self._buf[:index]
                return
            if len(self._buf) > keep:
                yield self._buf[:-keep]
                self._buf = self._buf[-keep:]
            await self._more()
