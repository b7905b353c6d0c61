"""Local authorization of id tags: the local authorization list (LocalAuthListManagement profile) and the
authorization cache, both mapping an id tag to the IdTagInfo dict the central system sent for it."""

from __future__ import annotations

from typing import Any

from stekker.sim.timeutil import parse_iso, utc_now

__all__ = ["LocalAuthorization", "info_status"]


def info_status(info: Any) -> str:
    """The status of an IdTagInfo, given as a dict or as an object with a ``status`` attribute."""
    if isinstance(info, dict):
        return str(info.get("status", "Invalid"))
    return str(getattr(info, "status", "Invalid"))


class LocalAuthorization:
    """The local authorization list (with its version, as set by SendLocalList) and the authorization
    cache of one station. Entries of the local list take precedence over (and are never added to) the
    cache. Whether each is enabled is configuration of the station, passed in by the caller."""

    def __init__(self) -> None:
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
            expiry = parse_iso(info.get("expiry_date"))
            if info.get("status") == "Accepted" and (expiry is None or expiry > utc_now()):
                return info
            return None  # known but not valid: the central system must decide
        return None

    def remember(self, id_tag: str, info: Any, *, cache_enabled: bool) -> None:
        """Cache the IdTagInfo the central system returned for ``id_tag`` (unless it is in the local list)."""
        if isinstance(info, dict) and cache_enabled and id_tag not in self.local_list:
            self.cache[id_tag] = dict(info)

    def apply_local_list(
        self,
        list_version: int,
        update_type: str,
        entries: list[dict[str, Any]],
        *,
        max_entries_per_message: int,
        max_list_length: int,
    ) -> str:
        """Apply a SendLocalList request ("Full" or "Differential"); returns the status to answer with."""
        if len(entries) > max_entries_per_message:
            return "Failed"
        if update_type == "Full":
            new_list = {e["id_tag"]: dict(e["id_tag_info"]) for e in entries if e.get("id_tag_info")}
        else:
            if list_version <= self.local_list_version:
                return "VersionMismatch"
            new_list = dict(self.local_list)
            for e in entries:
                if e.get("id_tag_info"):
                    new_list[e["id_tag"]] = dict(e["id_tag_info"])
                else:
                    new_list.pop(e["id_tag"], None)
        if len(new_list) > max_list_length:
            return "Failed"
        self.local_list = new_list
        self.local_list_version = list_version
        for tag in new_list:  # the local list takes precedence over the cache
            self.cache.pop(tag, None)
        return "Accepted"
