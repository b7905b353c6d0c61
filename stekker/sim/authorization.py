"""Local authorization of id tags: the local authorization list (LocalAuthListManagement profile) and the
authorization cache, both mapping an id tag to the IdTagInfo dict the central system sent for it.

The same logic serves OCPP 2.0.1, where the id tag is an idToken's value and the IdTagInfo an IdTokenInfo
(whose expiry is called ``cache_expiry_date_time``)."""

from __future__ import annotations

from typing import Any

from stekker.sim.timeutil import parse_iso, utc_now

__all__ = ["ListEntry", "LocalAuthorization", "info_status"]

#: One entry of a SendLocalList: an id tag and its IdTagInfo (None removes the tag in a differential update).
ListEntry = tuple[str, dict[str, Any] | None]


def info_status(info: Any) -> str:
    """The status of an IdTagInfo, given as a dict or as an object with a ``status`` attribute."""
    if isinstance(info, dict):
        return str(info.get("status", "Invalid"))
    return str(getattr(info, "status", "Invalid"))


class LocalAuthorization:
    """The local authorization list (with its version, as set by SendLocalList) and the authorization
    cache of one station. Entries of the local list take precedence over (and are never added to) the
    cache. Whether each is enabled is configuration of the station, passed in by the caller.
    ``expiry_field`` names the key of an info dict that holds its expiry date."""

    def __init__(self, expiry_field: str = "expiry_date") -> None:
        self.expiry_field = expiry_field
        self.local_list: dict[str, dict[str, Any]] = {}
        self.local_list_version = 0
        self.cache: dict[str, dict[str, Any]] = {}

    def lookup(self, id_tag: str, *, list_enabled: bool, cache_enabled: bool) -> dict[str, Any] | None:
        """Local list first, then the authorization cache; only entries that are Accepted and not expired."""
        sources = []
        if list_enabled:
            sources.append(self.local_list)
        if cache_enabled:
            sources.append(self.cache)
        for source in sources:
            info = source.get(id_tag)
            if info is None:
                continue
            expiry = parse_iso(info.get(self.expiry_field))
            if info.get("status") == "Accepted" and (expiry is None or expiry > utc_now()):
                return info
            return None  # known but not valid: the central system must decide
        return None

    def knows(self, id_tag: str, *, list_enabled: bool, cache_enabled: bool) -> bool:
        """Whether ``id_tag`` is in the (enabled) local list or cache at all, valid or not."""
        return (list_enabled and id_tag in self.local_list) or (cache_enabled and id_tag in self.cache)

    def remember(self, id_tag: str, info: Any, *, cache_enabled: bool) -> None:
        """Cache the IdTagInfo the central system returned for ``id_tag`` (unless it is in the local list)."""
        if isinstance(info, dict) and cache_enabled and id_tag not in self.local_list:
            self.cache[id_tag] = dict(info)

    def apply_local_list(
        self,
        list_version: int,
        update_type: str,
        entries: list[ListEntry],
        *,
        max_entries_per_message: int,
        max_list_length: int,
    ) -> str:
        """Apply a SendLocalList request ("Full" or "Differential"); returns the status to answer with."""
        if len(entries) > max_entries_per_message:
            return "Failed"
        if update_type == "Full":
            new_list = {tag: dict(info) for tag, info in entries if info}
        else:
            if list_version <= self.local_list_version:
                return "VersionMismatch"
            new_list = dict(self.local_list)
            for tag, info in entries:
                if info:
                    new_list[tag] = dict(info)
                else:
                    new_list.pop(tag, None)
        if len(new_list) > max_list_length:
            return "Failed"
        self.local_list = new_list
        self.local_list_version = list_version
        for tag in new_list:  # the local list takes precedence over the cache
            self.cache.pop(tag, None)
        return "Accepted"
