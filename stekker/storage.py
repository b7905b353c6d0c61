"""Where files stations upload are kept: a small storage interface and its local-disk form.

Keys are relative paths of safe segments (letters, digits, `.`, `_`, `-`; no segment starts
with a dot), so no key can leave the storage root. Other backends (S3, ...) implement the same
base class.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
READ_CHUNK = 64 * 1024


class StorageError(Exception):
    """A file could not be stored or read."""


class FileTooLarge(StorageError):
    """The content is larger than the limit; nothing was kept."""


class FileExists(StorageError):
    """A file is already stored under that key; it was not overwritten."""


class FileMissing(StorageError):
    """No file under that key."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    sha256: str


def check_key(key: str) -> str:
    """The key itself when it is a safe relative path; ValueError otherwise."""
    parts = key.split("/")
    if not key or not all(_SEGMENT.match(p) for p in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


def safe_file_name(name: str | None, fallback: str) -> str:
    """A name a station gave, made safe to use as one key segment: its last path component,
    unusual characters replaced, no leading dots, at most 100 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).lstrip("._")[:100]
    return base or fallback


class FileStorage(ABC):
    """The contract every storage backend keeps:

    - `put(key, chunks, max_size)` consumes the async iterator of bytes and stores it under
      `key`, in constant memory. The file becomes visible only once complete (never half a
      file). Over `max_size` bytes: FileTooLarge, and nothing is kept. A key already stored:
      FileExists, and the stored file is unchanged. Any other failure of `chunks` (e.g. the
      client went away) propagates, and nothing is kept.
    - `open(key)` streams a stored file as chunks; FileMissing when there is none.
    - `delete(key)` removes the file; deleting a missing file is not an error.
    - `size(key)` is the stored size in bytes, or None when there is no file.
    Keys are checked with `check_key` (ValueError for an unsafe key).
    """

    @abstractmethod
    async def put(
        self, key: str, chunks: AsyncIterator[bytes], max_size: int | None = None
    ) -> StoredFile: ...

    @abstractmethod
    def open(self, key: str) -> AsyncIterator[bytes]: ...

    @abstractmethod
    async def delete(self, key: str) -> None: ...

    @abstractmethod
    async def size(self, key: str) -> int | None: ...


class LocalDiskStorage(FileStorage):
    """Files under one directory. A file is written to `.partial/` first and linked to its
    final name when complete (atomic, and refusing to replace an existing file)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, chunks: AsyncIterator[bytes], max_size: int | None = None) -> StoredFile:
        final = self._path(key)
        if await asyncio.to_thread(final.exists):
            raise FileExists(f"{key} is already stored")
        partial_dir = self.root / ".partial"
        await asyncio.to_thread(partial_dir.mkdir, parents=True, exist_ok=True)
        partial = partial_dir / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(open, partial, "xb")
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise FileTooLarge(f"the file is larger than {max_size} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(handle.flush)
                await asyncio.to_thread(os.fsync, handle.fileno())
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
            try:
                await asyncio.to_thread(os.link, partial, final)
            except FileExistsError:
                raise FileExists(f"{key} is already stored") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(partial.unlink)
        return StoredFile(key, size, digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise FileMissing(f"no file {key}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path(key).unlink)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            return None


def local_storage(root: Path) -> FileStorage:
    return LocalDiskStorage(root)
