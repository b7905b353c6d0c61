"""Who sees which card number: one privacy policy for every read path (API, console, CLI).

A token uid, contract id, visual number or OCPP idTag/idToken is personal data: it names a
driver's card. The roles that run the network or help drivers (admin, operator, helpdesk) see
them as they are; the roles that only watch it (municipality, read-only) see the keyed pseudonym
the export uses (`p:` + hex, `stekker.export.pseudonym`): the same card gives the same pseudonym
everywhere, so "these 40 sessions were one card" still works, and a pseudonym can be searched
for (`uids_for`). Nobody, whatever their role, sees the secret of a single-use diagnostics
upload URL in a logged frame: the message log keeps what was sent, the reader gets a marker.

`Redactor` is the policy applied: `value` masks a JSON record (identifier keys at any depth,
logged OCPP frames inside it, and the identifiers found quoted in its text), `frame` one frame's
text (also when cut short), `uid` a single identifier.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from stekker.db.models import ChargingSession, Token
from stekker.db.models_users import Role
from stekker.export.pseudonym import (
    IDENTIFIER_KEYS,
    MIN_TEXT_MATCH,
    PREFIX,
    Pseudonymiser,
    installation_key,
)
from stekker.services.context import ServiceContext

__all__ = [
    "OPERATIONAL",
    "PREFIX",
    "SECRET_MARKER",
    "Redactor",
    "mask_upload_secrets",
    "pseudonymiser",
    "redactor_for",
    "sees_identifiers",
    "uids_for",
]

#: Roles that see card numbers as they are: they run the network or help drivers.
OPERATIONAL = frozenset({Role.ADMIN, Role.OPERATOR, Role.HELPDESK})

#: What replaces the secret of an upload URL (`/upload/diagnostics/{id}/{secret}`).
SECRET_MARKER = "***"
_UPLOAD_SECRET = re.compile(r"(/upload/diagnostics/\d+/)([A-Za-z0-9_\-%]+)")
#: A JSON string member of a frame's text: its key and its (escaped) value. Frames are matched as
#: text, not parsed, so a frame the log cut short is masked too.
_MEMBER = re.compile(r'"([A-Za-z_\-]{2,32})"\s*:\s*"((?:[^"\\]|\\.)*)"')
#: Keys of logged frames and records that hold OCPP frames as text.
FRAME_KEYS = frozenset({"frame"})

#: One pseudonymiser per key (its cache of recent uids serves every request).
_pseudonymisers: dict[bytes, Pseudonymiser] = {}


def sees_identifiers(role: Role) -> bool:
    """Whether this role sees token uids, contract ids and idTags as they are."""
    return role in OPERATIONAL


_NORMAL: dict[str, str] = {}


def _normal(key: str) -> str:
    """A key as IDENTIFIER_KEYS spells it (`id_tag`, `idTag` → `idtag`); keys repeat in every
    row, so each is worked out once."""
    normal = _NORMAL.get(key)
    if normal is None:
        normal = key.lower().replace("_", "").replace("-", "")
        if len(_NORMAL) < 10_000:
            _NORMAL[key] = normal
    return normal


def mask_upload_secrets(text: str) -> str:
    """`text` with the secret part of every diagnostics upload URL replaced by a marker."""
    if "/upload/diagnostics/" not in text:
        return text
    return _UPLOAD_SECRET.sub(lambda m: m.group(1) + SECRET_MARKER, text)


class Redactor:
    """The policy for one reader: with a pseudonymiser, identifiers become pseudonyms; without
    (an operational role), they stay. Upload secrets are masked either way."""

    def __init__(self, pseudonymiser: Pseudonymiser | None) -> None:
        self._pseudonym = pseudonymiser

    @property
    def pseudonymises(self) -> bool:
        return self._pseudonym is not None

    def uid(self, identifier: str | None) -> str | None:
        """One token uid, contract id or idTag as this reader may see it."""
        if identifier is None or self._pseudonym is None or not identifier:
            return identifier
        return self._pseudonym(identifier)

    def frame(self, text: str) -> str:
        """One logged OCPP frame's text as this reader may see it."""
        return self._frame(text, {})

    def value(self, value: Any) -> Any:
        """A JSON record (dicts, lists, text, as json.loads makes them) as this reader may see
        it: identifier keys at any depth, frames held as text under `frame`, and identifiers
        quoted in its other text."""
        if self._pseudonym is None:
            return self._secrets_only(value)
        found: dict[str, str] = {}
        self._collect(value, found)
        return self._scrub(value, found, _Quoted(found))

    # -- internals ---------------------------------------------------------------------------

    def _secrets_only(self, value: Any) -> Any:
        if isinstance(value, str):
            return mask_upload_secrets(value)
        if isinstance(value, dict):
            return {k: self._secrets_only(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._secrets_only(v) for v in value]
        return value

    def _frame(self, text: str, found: dict[str, str]) -> str:
        text = mask_upload_secrets(text)
        pseudonym = self._pseudonym
        if pseudonym is None:
            return text

        def member(match: re.Match[str]) -> str:
            key, raw = match.group(1), match.group(2)
            if _normal(key) not in IDENTIFIER_KEYS or not raw:
                return match.group(0)
            try:
                plain = json.loads(f'"{raw}"')
            except ValueError:
                plain = raw
            found[plain] = pseudonym(plain)
            return f'"{key}":"{found[plain]}"'

        return _MEMBER.sub(member, text)

    def _collect(self, value: Any, found: dict[str, str]) -> None:
        assert self._pseudonym is not None
        if isinstance(value, dict):
            for key, item in value.items():
                normal = _normal(key) if isinstance(key, str) else ""
                if normal in IDENTIFIER_KEYS and isinstance(item, str) and item:
                    if not item.startswith(PREFIX):
                        found[item] = self._pseudonym(item)
                elif normal in FRAME_KEYS and isinstance(item, str):
                    self._frame(item, found)
                else:
                    self._collect(item, found)
        elif isinstance(value, list):
            for item in value:
                self._collect(item, found)

    def _scrub(self, value: Any, found: Mapping[str, str], quoted: _Quoted) -> Any:
        assert self._pseudonym is not None
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                normal = _normal(key) if isinstance(key, str) else ""
                if normal in IDENTIFIER_KEYS and isinstance(item, str) and item:
                    out[key] = item if item.startswith(PREFIX) else self._pseudonym(item)
                elif normal in FRAME_KEYS and isinstance(item, str):
                    out[key] = quoted(self._frame(item, {}))
                else:
                    out[key] = self._scrub(item, found, quoted)
            return out
        if isinstance(value, list):
            return [self._scrub(item, found, quoted) for item in value]
        if isinstance(value, str):
            return quoted(mask_upload_secrets(value))
        return value


class _Quoted:
    """Finds a record's identifiers quoted in its text and replaces them, in one pass per text:
    one pattern for all of them (built once per record: a list of 1,000 sessions is one record),
    text shorter than the shortest identifier skipped, and each distinct text done once
    (statuses, timestamps and station ids repeat in every row)."""

    def __init__(self, found: Mapping[str, str]) -> None:
        searchable = sorted((k for k in found if len(k) >= MIN_TEXT_MATCH), key=len, reverse=True)
        self._found = found
        self._shortest = len(searchable[-1]) if searchable else 0
        self._pattern = re.compile("|".join(map(re.escape, searchable))) if searchable else None
        self._done: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        if self._pattern is None or len(text) < self._shortest:
            return text
        done = self._done.get(text)
        if done is None:
            done = self._pattern.sub(lambda match: self._found[match.group(0)], text)
            if len(self._done) < 100_000:
                self._done[text] = done
        return done


async def pseudonymiser(ctx: ServiceContext) -> Pseudonymiser:
    """The installation's pseudonymiser (the export's key, so the pseudonyms are the export's)."""
    key = await installation_key(ctx)
    known = _pseudonymisers.get(key)
    if known is None:
        if len(_pseudonymisers) > 16:  # keys of test installations; one in production
            _pseudonymisers.clear()
        known = _pseudonymisers[key] = Pseudonymiser(key)
    return known


async def redactor_for(ctx: ServiceContext, role: Role) -> Redactor:
    """The policy for a reader with this role."""
    if sees_identifiers(role):
        return Redactor(None)
    return Redactor(await pseudonymiser(ctx))


#: How many distinct uids a pseudonym search compares at most (a search, not an export).
MAX_SEARCH_UIDS = 1_000_000


async def uids_for(ctx: ServiceContext, role: Role, value: str) -> list[str]:
    """The uids a search term stands for: a pseudonym (`p:...`) is looked up among the known
    token uids and session uids (a keyed hash cannot be reversed, only recomputed); any other
    term is itself, for roles that see uids, and matches nothing for roles that do not (else
    they could test whether a card number they guess has charged)."""
    if not value.startswith(PREFIX):
        return [value] if sees_identifiers(role) else []
    pseudonym = await pseudonymiser(ctx)
    async with ctx.db() as db:
        known = set((await db.execute(select(Token.uid).limit(MAX_SEARCH_UIDS))).scalars())
        known.update(
            uid
            for uid in (
                await db.execute(select(ChargingSession.token_uid).distinct().limit(MAX_SEARCH_UIDS))
            ).scalars()
            if uid
        )
    return sorted(uid for uid in known if pseudonym(uid) == value)
